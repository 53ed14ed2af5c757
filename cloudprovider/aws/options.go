package aws

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/offerings"
)

// Tags the provider puts on every instance it launches. List finds
// fleetpack's instances by TagManagedBy and the cluster tag.
const (
	// TagManagedBy marks an instance as fleetpack's; its value is ManagedBy.
	TagManagedBy = "fleetpack.dev/managed-by"
	// ManagedBy is the value of TagManagedBy.
	ManagedBy = "fleetpack"
	// TagClaim holds the claim's hostname placeholder.
	TagClaim = "fleetpack.dev/claim"
	// TagNodePool holds the NodePool name (the same key as the node label).
	TagNodePool = offerings.LabelNodePool
	// TagClusterPrefix + cluster name, value "owned", is the tag EKS and the
	// AWS cloud controller use to attribute an instance to a cluster.
	TagClusterPrefix = "kubernetes.io/cluster/"
)

// LabelSpotAllocationStrategy, set in a NodeTemplate's Labels, chooses the
// Spot allocation strategy for that NodePool's launches, overriding
// Options.SpotAllocationStrategy. Values: price-capacity-optimized,
// capacity-optimized, capacity-optimized-prioritized, lowest-price.
const LabelSpotAllocationStrategy = "fleetpack.dev/spot-allocation-strategy"

// Defaults.
const (
	DefaultSpotAllocationStrategy = types.SpotAllocationStrategyPriceCapacityOptimized
	DefaultSubnetCacheTTL         = time.Minute
	DefaultSubnetFullTTL          = 3 * time.Minute
	DefaultMaxInstanceTypes       = 60
)

var validSpotStrategies = []types.SpotAllocationStrategy{
	types.SpotAllocationStrategyPriceCapacityOptimized,
	types.SpotAllocationStrategyCapacityOptimized,
	types.SpotAllocationStrategyCapacityOptimizedPrioritized,
	types.SpotAllocationStrategyLowestPrice,
}

// LaunchTemplate names the EC2 launch template (AMI, user data, security
// groups, instance profile) used for one architecture. Set ID or Name;
// Version defaults to "$Latest".
type LaunchTemplate struct {
	ID      string
	Name    string
	Version string
}

// UnavailableOfferings is the cache of pools EC2 recently refused, shared
// with the scheduler; *offerings.UnavailableOfferings implements it. The
// provider marks what CreateFleet reports and never launches a marked pool.
type UnavailableOfferings interface {
	MarkUnavailable(ctx context.Context, reason, capacityType, instanceType, zone string)
	// MarkCapacityTypeUnavailable marks a capacity type in zone ("" = every zone).
	MarkCapacityTypeUnavailable(ctx context.Context, reason, capacityType, zone string)
	// MarkFamilyUnavailable marks an instance family (offerings.Family) in
	// zone ("" = every zone).
	MarkFamilyUnavailable(ctx context.Context, reason, capacityType, family, zone string)
	// Apply returns the types with marked offerings unavailable, copying
	// what it changes.
	Apply(types []*offerings.InstanceType) []*offerings.InstanceType
}

var _ UnavailableOfferings = (*offerings.UnavailableOfferings)(nil)

// Catalog supplies the instance types the provider can launch.
type Catalog interface {
	InstanceTypes(ctx context.Context) ([]*offerings.InstanceType, error)
}

// StaticCatalog is a fixed catalog, e.g. offerings' embedded default one.
type StaticCatalog []*offerings.InstanceType

// InstanceTypes returns the catalog.
func (c StaticCatalog) InstanceTypes(context.Context) ([]*offerings.InstanceType, error) {
	return c, nil
}

// Options configure a Provider.
type Options struct {
	// ClusterName is required: it goes into the cluster tag that List uses.
	ClusterName string
	// Region, if set, becomes the topology.kubernetes.io/region label.
	Region string
	// LaunchTemplates maps an architecture (kubernetes.io/arch value: amd64,
	// arm64) to its launch template. Instance types of other architectures
	// are not launched. Required.
	LaunchTemplates map[string]LaunchTemplate
	// SubnetSelector selects subnets by tag (value "*" = the key exists);
	// SubnetIDs selects them by id. One of the two is required. In each
	// zone the subnet with the most free addresses is used.
	SubnetSelector map[string]string
	SubnetIDs      []string
	// SpotAllocationStrategy for Spot fleets; default price-capacity-optimized.
	// A NodeTemplate can override it with LabelSpotAllocationStrategy.
	SpotAllocationStrategy types.SpotAllocationStrategy
	// Catalog supplies instance types for InstanceTypes, Get and List. Required.
	Catalog Catalog
	// Unavailable is the shared unavailable-offerings cache. Required.
	Unavailable UnavailableOfferings
	// Tags are added to every instance (the provider's own tags win).
	Tags map[string]string
	// MaxInstanceTypes caps the instance types per CreateFleet (default 60).
	MaxInstanceTypes int
	// SubnetCacheTTL is how long DescribeSubnets results are reused
	// (default 1m); SubnetFullTTL is how long a subnet that ran out of
	// addresses is skipped (default 3m).
	SubnetCacheTTL time.Duration
	SubnetFullTTL  time.Duration
	// Clock defaults to the real clock; Logger to slog.Default().
	Clock  clock.Clock
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.ClusterName == "" {
		return fmt.Errorf("aws provider options: ClusterName: must not be empty")
	}
	if len(o.LaunchTemplates) == 0 {
		return fmt.Errorf("aws provider options: LaunchTemplates: need at least one architecture's launch template")
	}
	for arch, lt := range o.LaunchTemplates {
		if lt.ID == "" && lt.Name == "" {
			return fmt.Errorf("aws provider options: LaunchTemplates[%s]: set ID or Name", arch)
		}
	}
	if len(o.SubnetSelector) == 0 && len(o.SubnetIDs) == 0 {
		return fmt.Errorf("aws provider options: SubnetSelector or SubnetIDs: one is required")
	}
	if o.SpotAllocationStrategy == "" {
		o.SpotAllocationStrategy = DefaultSpotAllocationStrategy
	}
	if !slices.Contains(validSpotStrategies, o.SpotAllocationStrategy) {
		return fmt.Errorf("aws provider options: SpotAllocationStrategy: %q is not one of %v", o.SpotAllocationStrategy, validSpotStrategies)
	}
	if o.Catalog == nil {
		return fmt.Errorf("aws provider options: Catalog: must not be nil")
	}
	if o.Unavailable == nil {
		return fmt.Errorf("aws provider options: Unavailable: must not be nil")
	}
	if o.MaxInstanceTypes <= 0 {
		o.MaxInstanceTypes = DefaultMaxInstanceTypes
	}
	if o.SubnetCacheTTL <= 0 {
		o.SubnetCacheTTL = DefaultSubnetCacheTTL
	}
	if o.SubnetFullTTL <= 0 {
		o.SubnetFullTTL = DefaultSubnetFullTTL
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
