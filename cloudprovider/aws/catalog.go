package aws

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/offerings"
)

// DefaultCatalogRefresh is how often an APICatalog re-reads EC2.
const DefaultCatalogRefresh = 15 * time.Minute

// APICatalogOptions configure an APICatalog.
type APICatalogOptions struct {
	// Region is the EC2 region the client talks to; it becomes the
	// topology.kubernetes.io/region label. Required.
	Region string
	// OnDemandPrices are Linux on-demand prices in USD per hour by instance
	// type (EC2 has no price API; the Pricing API is another service).
	// Default: the embedded us-east-1 prices of offerings.DefaultCatalog.
	// Types without a price are left out of the catalog.
	OnDemandPrices map[string]float64
	// Build adjusts overhead and max pods as for the embedded catalog.
	Build offerings.CatalogOptions
	// Refresh is how long a read of EC2 is reused (default 15m).
	Refresh time.Duration
	// Clock defaults to the real clock; Logger to slog.Default().
	Clock  clock.PassiveClock
	Logger *slog.Logger
}

// APICatalog is the instance-type catalog read from the EC2 API:
// DescribeInstanceTypes (which types exist and their shape),
// DescribeInstanceTypeOfferings per zone (where each is sold), and
// DescribeSpotPriceHistory (the current Spot price per type and zone; a type
// has a Spot offering in a zone only where EC2 quotes one). Capacity,
// overhead and labels are computed exactly as for the embedded catalog. The
// result is cached for Options.Refresh; if a refresh fails the previous
// catalog is kept and the error logged. Safe for concurrent use.
type APICatalog struct {
	api  EC2API
	opts APICatalogOptions

	refreshMu sync.Mutex // one refresh at a time
	mu        sync.Mutex
	types     []*offerings.InstanceType
	fetchedAt time.Time
}

var _ Catalog = (*APICatalog)(nil)

// NewAPICatalog returns a catalog that reads EC2 through api on first use.
func NewAPICatalog(api EC2API, opts APICatalogOptions) (*APICatalog, error) {
	if api == nil {
		return nil, fmt.Errorf("aws api catalog: EC2 client must not be nil")
	}
	if opts.Region == "" {
		return nil, fmt.Errorf("aws api catalog options: Region: must not be empty")
	}
	if opts.OnDemandPrices == nil {
		def, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
		if err != nil {
			return nil, fmt.Errorf("aws api catalog: reading embedded on-demand prices: %w", err)
		}
		opts.OnDemandPrices = make(map[string]float64, len(def))
		for _, it := range def {
			if o, ok := it.CheapestOffering(func(o offerings.Offering) bool { return o.CapacityType == offerings.CapacityTypeOnDemand }); ok {
				opts.OnDemandPrices[it.Name] = o.Price
			}
		}
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultCatalogRefresh
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &APICatalog{api: api, opts: opts}, nil
}

// InstanceTypes returns the catalog, reading EC2 if the cached copy is older
// than the refresh period. The returned types are shared: treat them as
// read-only.
func (c *APICatalog) InstanceTypes(ctx context.Context) ([]*offerings.InstanceType, error) {
	if its, fresh := c.cached(); fresh {
		return its, nil
	}
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	// Another caller may have refreshed while this one waited.
	its, fresh := c.cached()
	if fresh {
		return its, nil
	}
	if err := c.refreshLocked(ctx); err != nil {
		if its == nil {
			return nil, err
		}
		c.opts.Logger.WarnContext(ctx, "refreshing the EC2 instance-type catalog failed; keeping the previous one", "error", err)
		return its, nil
	}
	its, _ = c.cached()
	return its, nil
}

// Refresh reads EC2 now, whatever the cache's age.
func (c *APICatalog) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return c.refreshLocked(ctx)
}

func (c *APICatalog) cached() ([]*offerings.InstanceType, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := c.types != nil && c.opts.Clock.Since(c.fetchedAt) < c.opts.Refresh
	return c.types, fresh
}

func (c *APICatalog) refreshLocked(ctx context.Context) error {
	now := c.opts.Clock.Now()
	infos, err := c.describeTypes(ctx)
	if err != nil {
		return err
	}
	zonesOf, err := c.describeOfferings(ctx)
	if err != nil {
		return err
	}
	spot, err := c.describeSpotPrices(ctx, now)
	if err != nil {
		return err
	}
	its, skipped := c.build(infos, zonesOf, spot)
	if len(its) == 0 {
		return fmt.Errorf("aws api catalog: EC2 described %d instance types but none could be priced and built (%d skipped)", len(infos), skipped)
	}
	c.mu.Lock()
	c.types, c.fetchedAt = its, now
	c.mu.Unlock()
	c.opts.Logger.InfoContext(ctx, "refreshed the EC2 instance-type catalog", "types", len(its), "skipped", skipped)
	return nil
}

func (c *APICatalog) describeTypes(ctx context.Context) ([]types.InstanceTypeInfo, error) {
	var out []types.InstanceTypeInfo
	pages := ec2.NewDescribeInstanceTypesPaginator(c.api, &ec2.DescribeInstanceTypesInput{MaxResults: int32Ptr(100)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws api catalog: DescribeInstanceTypes: %w", err)
		}
		out = append(out, page.InstanceTypes...)
	}
	return out, nil
}

func (c *APICatalog) describeOfferings(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	pages := ec2.NewDescribeInstanceTypeOfferingsPaginator(c.api, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeAvailabilityZone,
		MaxResults:   int32Ptr(1000),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws api catalog: DescribeInstanceTypeOfferings: %w", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			if o.Location != nil {
				out[string(o.InstanceType)] = append(out[string(o.InstanceType)], *o.Location)
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
		out[k] = slices.Compact(out[k])
	}
	return out, nil
}

type typeZone struct{ instanceType, zone string }

// describeSpotPrices returns the latest Linux Spot price per (type, zone).
// A StartTime of now makes EC2 return just the price in effect now.
func (c *APICatalog) describeSpotPrices(ctx context.Context, now time.Time) (map[typeZone]float64, error) {
	type quote struct {
		price float64
		at    time.Time
	}
	latest := map[typeZone]quote{}
	pages := ec2.NewDescribeSpotPriceHistoryPaginator(c.api, &ec2.DescribeSpotPriceHistoryInput{
		ProductDescriptions: []string{"Linux/UNIX"},
		StartTime:           &now,
		MaxResults:          int32Ptr(1000),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("aws api catalog: DescribeSpotPriceHistory: %w", err)
		}
		for _, sp := range page.SpotPriceHistory {
			if sp.AvailabilityZone == nil || sp.SpotPrice == nil {
				continue
			}
			price, err := strconv.ParseFloat(*sp.SpotPrice, 64)
			if err != nil || !(price > 0) {
				continue
			}
			var at time.Time
			if sp.Timestamp != nil {
				at = *sp.Timestamp
			}
			k := typeZone{string(sp.InstanceType), *sp.AvailabilityZone}
			if q, ok := latest[k]; !ok || at.After(q.at) {
				latest[k] = quote{price, at}
			}
		}
	}
	out := make(map[typeZone]float64, len(latest))
	for k, q := range latest {
		out[k] = q.price
	}
	return out, nil
}

// build turns EC2's descriptions into InstanceTypes through the offerings
// catalog builder, then gives each the offerings EC2 really has: on-demand
// in every zone the type is sold in, Spot where a price is quoted.
func (c *APICatalog) build(infos []types.InstanceTypeInfo, zonesOf map[string][]string, spot map[typeZone]float64) ([]*offerings.InstanceType, int) {
	file := offerings.CatalogFile{Format: offerings.CatalogFormat, Region: c.opts.Region}
	allZones := map[string]bool{}
	spotOK := map[string]bool{}
	skipped := 0
	for i := range infos {
		entry, ok := catalogEntry(&infos[i], c.opts.OnDemandPrices)
		zones := zonesOf[entry.Name]
		if !ok || len(zones) == 0 {
			skipped++
			continue
		}
		// Validate one entry at a time so that one odd type is skipped
		// rather than failing the whole catalog.
		one := offerings.CatalogFile{Format: offerings.CatalogFormat, Region: c.opts.Region, Zones: zones, InstanceTypes: []offerings.CatalogInstanceType{entry}}
		if err := one.Validate(); err != nil {
			c.opts.Logger.Debug("skipping instance type", "instanceType", entry.Name, "error", err)
			skipped++
			continue
		}
		file.InstanceTypes = append(file.InstanceTypes, entry)
		spotOK[entry.Name] = slices.Contains(infos[i].SupportedUsageClasses, types.UsageClassTypeSpot)
		for _, z := range zones {
			allZones[z] = true
		}
	}
	for z := range allZones {
		file.Zones = append(file.Zones, z)
	}
	slices.Sort(file.Zones)
	if len(file.InstanceTypes) == 0 {
		return nil, skipped
	}
	its, err := file.Build(c.opts.Build)
	if err != nil {
		c.opts.Logger.Error("building the EC2 instance-type catalog failed", "error", err)
		return nil, skipped + len(file.InstanceTypes)
	}
	for _, it := range its {
		odPrice := c.opts.OnDemandPrices[it.Name]
		zones := zonesOf[it.Name]
		offs := make([]offerings.Offering, 0, 2*len(zones))
		for _, z := range zones {
			offs = append(offs, offerings.Offering{Zone: z, CapacityType: offerings.CapacityTypeOnDemand, Price: odPrice, Available: true})
			if p, ok := spot[typeZone{it.Name, z}]; ok && spotOK[it.Name] {
				offs = append(offs, offerings.Offering{Zone: z, CapacityType: offerings.CapacityTypeSpot, Price: p, Available: true})
			}
		}
		it.Offerings = offs
	}
	return its, skipped
}

// catalogEntry describes one EC2 instance type in the catalog's terms; false
// if it cannot run a Linux node fleetpack prices (no price, no x86_64 or
// arm64, no vCPU or memory figure).
func catalogEntry(info *types.InstanceTypeInfo, prices map[string]float64) (offerings.CatalogInstanceType, bool) {
	name := string(info.InstanceType)
	e := offerings.CatalogInstanceType{Name: name}
	family, size, ok := strings.Cut(name, ".")
	price, priced := prices[name]
	if !ok || !priced || info.VCpuInfo == nil || info.VCpuInfo.DefaultVCpus == nil || info.MemoryInfo == nil || info.MemoryInfo.SizeInMiB == nil || info.ProcessorInfo == nil {
		return e, false
	}
	e.Family, e.Size, e.OnDemandPrice = family, size, price
	e.Category, e.Generation = categoryGeneration(family)
	e.VCPU = int64(*info.VCpuInfo.DefaultVCpus)
	e.MemoryMiB = *info.MemoryInfo.SizeInMiB
	switch {
	case slices.Contains(info.ProcessorInfo.SupportedArchitectures, types.ArchitectureTypeX8664):
		e.Arch = "amd64"
	case slices.Contains(info.ProcessorInfo.SupportedArchitectures, types.ArchitectureTypeArm64):
		e.Arch = "arm64"
	default:
		return e, false
	}
	if m := info.ProcessorInfo.Manufacturer; m != nil {
		e.CPUManufacturer = strings.ToLower(*m)
	}
	if info.BareMetal != nil {
		e.BareMetal = *info.BareMetal
	}
	if g := info.GpuInfo; g != nil && len(g.Gpus) > 0 && g.Gpus[0].Name != nil && g.Gpus[0].Manufacturer != nil {
		manufacturer := strings.ToLower(*g.Gpus[0].Manufacturer)
		if manufacturer == "nvidia" || manufacturer == "amd" || manufacturer == "habana" {
			e.GPUName, e.GPUManufacturer = strings.ToLower(*g.Gpus[0].Name), manufacturer
			for _, d := range g.Gpus {
				if d.Count != nil {
					e.GPUCount += int64(*d.Count)
				}
			}
		}
	}
	if n := info.NeuronInfo; n != nil && len(n.NeuronDevices) > 0 && n.NeuronDevices[0].Name != nil {
		e.AcceleratorName = strings.ToLower(*n.NeuronDevices[0].Name)
		for _, d := range n.NeuronDevices {
			if d.Count != nil {
				e.AcceleratorCount += int64(*d.Count)
			}
		}
	} else if a := info.InferenceAcceleratorInfo; a != nil && len(a.Accelerators) > 0 && a.Accelerators[0].Name != nil {
		e.AcceleratorName = strings.ToLower(*a.Accelerators[0].Name)
		for _, d := range a.Accelerators {
			if d.Count != nil {
				e.AcceleratorCount += int64(*d.Count)
			}
		}
	}
	if n := info.NetworkInfo; n != nil && n.Ipv4AddressesPerInterface != nil {
		// Only the default network card's ENIs take pod addresses.
		enis := n.MaximumNetworkInterfaces
		def := int32(0)
		if n.DefaultNetworkCardIndex != nil {
			def = *n.DefaultNetworkCardIndex
		}
		for _, card := range n.NetworkCards {
			if card.NetworkCardIndex != nil && *card.NetworkCardIndex == def && card.MaximumNetworkInterfaces != nil {
				enis = card.MaximumNetworkInterfaces
			}
		}
		if enis != nil && *enis > 0 && *n.Ipv4AddressesPerInterface > 0 {
			e.DefaultCardENIs, e.IPv4PerENI = int64(*enis), int64(*n.Ipv4AddressesPerInterface)
		}
	}
	return e, true
}

// familyScheme is Karpenter's reading of an instance family: category
// letters, an optional high-memory "-<n>tb" part, then the generation.
var familyScheme = regexp.MustCompile(`^([a-z]+)(-[0-9]+tb)?([0-9]+)`)

// categoryGeneration splits a family such as "m5", "c6gn", "u-6tb1" or
// "u7i-12tb" into its category letters ("m", "c", "u", "u") and generation
// (5, 6, 1, 7), as Karpenter labels them.
func categoryGeneration(family string) (string, int) {
	m := familyScheme.FindStringSubmatch(family)
	if m == nil {
		i := 0
		for i < len(family) && family[i] >= 'a' && family[i] <= 'z' {
			i++
		}
		return family[:i], 0
	}
	gen, _ := strconv.Atoi(m[3])
	return m[1], gen
}
