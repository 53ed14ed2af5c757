package aws_test

import (
	"context"
	"log"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
)

// Wiring the provider to real EC2: the SDK's adaptive retryer handles
// throttling, the catalog is read from the EC2 API, and the unavailable
// offerings cache is shared with the scheduler.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithRetryMode(awssdk.RetryModeAdaptive),
		config.WithRetryMaxAttempts(8))
	if err != nil {
		log.Fatal(err)
	}
	client := ec2.NewFromConfig(cfg)
	catalog, err := aws.NewAPICatalog(client, aws.APICatalogOptions{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	provider, err := aws.New(client, aws.Options{
		ClusterName: "prod",
		Region:      "us-east-1",
		LaunchTemplates: map[string]aws.LaunchTemplate{
			"amd64": {Name: "prod-nodes-amd64"},
			"arm64": {Name: "prod-nodes-arm64"},
		},
		SubnetSelector: map[string]string{"karpenter.sh/discovery": "prod"},
		Catalog:        catalog,
		Unavailable:    offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{}),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = provider // provider.Create(ctx, claim) for each claim of a plan
}

// The same provider against the fake EC2, as tests and the simulator use it.
func ExampleNew_fake() {
	types, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ec2Fake := fake.NewFromCatalog(types, fake.Options{}, map[string]string{"discovery": "sim"}, 4000)
	ec2Fake.DrainCapacityType(fake.Spot) // every Spot pool is out of capacity
	_, err = aws.New(ec2Fake, aws.Options{
		ClusterName:     "sim",
		LaunchTemplates: map[string]aws.LaunchTemplate{"amd64": {Name: "sim"}, "arm64": {Name: "sim"}},
		SubnetSelector:  map[string]string{"discovery": "sim"},
		Catalog:         aws.StaticCatalog(types),
		Unavailable:     offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{}),
	})
	if err != nil {
		log.Fatal(err)
	}
}
