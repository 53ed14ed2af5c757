package aws

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestRealEC2Catalog reads the instance-type catalog from real EC2. It runs
// only when AWS credentials are in the environment, and only reads (it
// launches nothing): AWS_ACCESS_KEY_ID, AWS_PROFILE or
// AWS_WEB_IDENTITY_TOKEN_FILE, region from AWS_REGION (default us-east-1).
func TestRealEC2Catalog(t *testing.T) {
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" && os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE") == "" {
		t.Skip("no AWS credentials in the environment")
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithRetryMaxAttempts(8))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewAPICatalog(ec2.NewFromConfig(cfg), APICatalogOptions{Region: region, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	its, err := c.InstanceTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spot := 0
	for _, it := range its {
		for _, o := range it.Offerings {
			if o.CapacityType == "spot" {
				spot++
			}
		}
	}
	if len(its) < 100 || spot == 0 {
		t.Errorf("real catalog: %d types, %d spot offerings; want hundreds and some spot", len(its), spot)
	}
	t.Logf("real EC2 catalog in %s: %d types, %d spot offerings", region, len(its), spot)
}
