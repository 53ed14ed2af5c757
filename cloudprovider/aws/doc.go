// Package aws is fleetpack's EC2 cloud provider: it implements
// cloudprovider.CloudProvider on aws-sdk-go-v2's EC2 client, through the
// narrow EC2API interface that the real client and the in-memory fake
// (package fake) both satisfy.
//
// Create launches one instance per NodeClaim with an instant CreateFleet of
// target capacity 1. It asks for Spot when the claim's requirements allow
// karpenter.sh/capacity-type=spot and a Spot pool is available — using the
// price-capacity-optimized allocation strategy unless Options or the
// NodeTemplate label LabelSpotAllocationStrategy say capacity-optimized,
// capacity-optimized-prioritized or lowest-price — and on-demand
// (lowest-price) otherwise. The overrides are one per (instance type, zone)
// of the claim's first 60 types whose offering is available, allowed by the
// claim, and not marked in the shared UnavailableOfferings cache; each
// carries its zone and the zone's subnet with the most free addresses. When
// the claim also allows on-demand, Spot pools pricier than the cheapest
// on-demand pool are left out. Overrides are grouped into one launch
// template config per architecture (Options.LaunchTemplates).
//
// Every CreateFleetError is classified (ClassifyFleetError): capacity
// errors mark their pool unavailable for the cache's TTL; account-wide ones
// (MaxSpotInstanceCountExceeded, Spot's service-linked role) mark the whole
// capacity type, vCPU quota errors the instance family; a subnet out of
// addresses is skipped for Options.SubnetFullTTL. When a Spot fleet launches
// nothing and no Spot pool is left, the same Create retries on-demand at
// once, without sleeping; when nothing is left it returns a
// *cloudprovider.InsufficientCapacityError listing every pool tried. Other
// errors are returned wrapped, and throttling is left to the SDK retryer
// (see EC2API). An instance CreateFleet returns is never lost: it is
// returned as a node, or terminated if the node cannot be built, and it is
// tagged (TagManagedBy, the cluster tag) so List finds it either way.
//
// InstanceTypes returns the catalog (a StaticCatalog such as
// offerings.DefaultCatalog, or an APICatalog refreshed from
// DescribeInstanceTypes, DescribeInstanceTypeOfferings and
// DescribeSpotPriceHistory) with the unavailable offerings applied.
package aws
