package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2API is the part of the EC2 client the provider uses. The real
// *ec2.Client satisfies it, and so does the in-memory fake in
// cloudprovider/aws/fake, so every code path runs against either.
//
// Throttling (RequestLimitExceeded) is retried inside *ec2.Client by the
// SDK's retryer; configure it when building the client, e.g.
//
//	cfg, _ := config.LoadDefaultConfig(ctx,
//		config.WithRetryMode(aws.RetryModeAdaptive), // client-side rate limiting on throttles
//		config.WithRetryMaxAttempts(8))
//	client := ec2.NewFromConfig(cfg)
//
// or per client with ec2.NewFromConfig(cfg, func(o *ec2.Options) {
// o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 8 }) }).
// The provider never retries throttled calls itself; CreateFleet carries a
// ClientToken so a retried request cannot launch twice.
type EC2API interface {
	CreateFleet(ctx context.Context, params *ec2.CreateFleetInput, optFns ...func(*ec2.Options)) (*ec2.CreateFleetOutput, error)
	TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeSubnets(ctx context.Context, params *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeInstanceTypes(ctx context.Context, params *ec2.DescribeInstanceTypesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeInstanceTypeOfferings(ctx context.Context, params *ec2.DescribeInstanceTypeOfferingsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
	DescribeSpotPriceHistory(ctx context.Context, params *ec2.DescribeSpotPriceHistoryInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)
