package fake

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"k8s.io/utils/clock"
)

// Operation names, as recorded in Call.Op and accepted by ThrottleNext,
// FailNext and the Hook.
const (
	OpCreateFleet                   = "CreateFleet"
	OpTerminateInstances            = "TerminateInstances"
	OpDescribeInstances             = "DescribeInstances"
	OpDescribeSubnets               = "DescribeSubnets"
	OpDescribeInstanceTypes         = "DescribeInstanceTypes"
	OpDescribeInstanceTypeOfferings = "DescribeInstanceTypeOfferings"
	OpDescribeSpotPriceHistory      = "DescribeSpotPriceHistory"
)

// Capacity types, as EC2 spells them in DefaultTargetCapacityType and
// CreateFleetError.Lifecycle.
const (
	Spot     = "spot"
	OnDemand = "on-demand"
)

// PoolKey names one capacity pool.
type PoolKey struct {
	CapacityType string
	InstanceType string
	Zone         string
}

// Call is one recorded API call. Input is the caller's pointer, not a copy.
type Call struct {
	Op    string
	Input any
	Time  time.Time
	// Err is the top-level error the call returned, if any.
	Err error
}

// Options configure a fake EC2.
type Options struct {
	// Clock stamps launches and price history and drives pending -> running.
	// Default: the real clock.
	Clock clock.PassiveClock
	// Region names the region (default us-east-1).
	Region string
	// DefaultCapacity is how many instances each pool holds until set
	// otherwise (default 1000).
	DefaultCapacity int
	// PriceCapacityWindow is how many of the cheapest pools
	// price-capacity-optimized chooses the deepest from (default 3).
	PriceCapacityWindow int
	// StartupDelay is how long an instance stays pending (default 0: it is
	// running from the first Describe).
	StartupDelay time.Duration
}

type instanceType struct {
	info    types.InstanceTypeInfo
	zones   map[string]bool
	odPrice float64
	vcpus   int
}

type pricePoint struct {
	at    time.Time
	price float64
}

type subnet struct {
	s    types.Subnet
	free int
}

type instance struct {
	inst      types.Instance
	pool      PoolKey
	vcpus     int
	launched  time.Time
	terminate bool
}

// EC2 is the in-memory EC2. Create it with New or NewFromCatalog.
type EC2 struct {
	opts  Options
	clock clock.PassiveClock

	mu              sync.Mutex
	types           map[string]*instanceType
	typeNames       []string // sorted
	zones           []string // sorted
	capacity        map[PoolKey]int
	poolErrors      map[PoolKey]poolError
	spotPrices      map[PoolKey][]pricePoint // key CapacityType is Spot
	subnets         map[string]*subnet
	subnetIDs       []string // insertion order
	instances       map[string]*instance
	instanceIDs     []string // launch order
	launchTemplates map[string]bool
	spotQuota       int // max live spot instances; <0 unlimited
	vcpuQuota       int // max live on-demand vCPUs; <0 unlimited
	throttle        map[string]int
	failNext        map[string][]error
	hook            func(ctx context.Context, op string) error
	calls           []Call
	tokens          map[string]*ec2.CreateFleetOutput
	seq             int
}

type poolError struct{ code, message string }

// New returns an empty fake EC2: add instance types, subnets and prices
// before launching, or use NewFromCatalog.
func New(opts Options) *EC2 {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.DefaultCapacity == 0 {
		opts.DefaultCapacity = 1000
	}
	if opts.PriceCapacityWindow <= 0 {
		opts.PriceCapacityWindow = 3
	}
	return &EC2{
		opts:            opts,
		clock:           opts.Clock,
		types:           map[string]*instanceType{},
		capacity:        map[PoolKey]int{},
		poolErrors:      map[PoolKey]poolError{},
		spotPrices:      map[PoolKey][]pricePoint{},
		subnets:         map[string]*subnet{},
		instances:       map[string]*instance{},
		launchTemplates: map[string]bool{},
		spotQuota:       -1,
		vcpuQuota:       -1,
		throttle:        map[string]int{},
		failNext:        map[string][]error{},
		tokens:          map[string]*ec2.CreateFleetOutput{},
	}
}

// AddInstanceType makes info launchable in zones at the on-demand price
// odPrice (USD/hour). Spot is offered where SetSpotPrice gives a price and
// info.SupportedUsageClasses includes spot.
func (f *EC2) AddInstanceType(info types.InstanceTypeInfo, odPrice float64, zones ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := string(info.InstanceType)
	it := f.types[name]
	if it == nil {
		it = &instanceType{zones: map[string]bool{}}
		f.types[name] = it
		f.typeNames = insertSorted(f.typeNames, name)
	}
	it.info, it.odPrice = info, odPrice
	if info.VCpuInfo != nil && info.VCpuInfo.DefaultVCpus != nil {
		it.vcpus = int(*info.VCpuInfo.DefaultVCpus)
	}
	for _, z := range zones {
		it.zones[z] = true
		f.zones = insertSorted(f.zones, z)
	}
}

func insertSorted(s []string, v string) []string {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

// SetSpotPrice records a new Spot price for a pool at the current time.
func (f *EC2) SetSpotPrice(instanceType, zone string, price float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := PoolKey{Spot, instanceType, zone}
	f.spotPrices[k] = append(f.spotPrices[k], pricePoint{f.clock.Now(), price})
}

// AddSubnet adds a subnet in zone with free addresses and tags.
func (f *EC2) AddSubnet(id, zone string, free int, tags map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := types.Subnet{
		SubnetId:         &id,
		AvailabilityZone: &zone,
		VpcId:            ptr("vpc-fake"),
		State:            types.SubnetStateAvailable,
		CidrBlock:        ptr(fmt.Sprintf("10.%d.0.0/16", len(f.subnetIDs))),
	}
	for _, k := range sortedKeys(tags) {
		s.Tags = append(s.Tags, types.Tag{Key: ptr(k), Value: ptr(tags[k])})
	}
	if _, ok := f.subnets[id]; !ok {
		f.subnetIDs = append(f.subnetIDs, id)
	}
	f.subnets[id] = &subnet{s: s, free: free}
}

// SetSubnetFree sets how many addresses a subnet has left.
func (f *EC2) SetSubnetFree(id string, free int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.subnets[id]; s != nil {
		s.free = free
	}
}

// AddLaunchTemplate registers a launch template name or id. Once any is
// registered, CreateFleet rejects unknown ones as EC2 does.
func (f *EC2) AddLaunchTemplate(nameOrID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.launchTemplates[nameOrID] = true
}

// SetCapacity sets how many more instances a pool can launch.
func (f *EC2) SetCapacity(capacityType, instanceType, zone string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity[PoolKey{capacityType, instanceType, zone}] = n
}

// Capacity returns how many more instances a pool can launch.
func (f *EC2) Capacity(capacityType, instanceType, zone string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remaining(PoolKey{capacityType, instanceType, zone})
}

// DrainPool empties a pool: the next launch from it fails with EC2's
// insufficient-capacity error for its capacity type.
func (f *EC2) DrainPool(capacityType, instanceType, zone string) {
	f.SetCapacity(capacityType, instanceType, zone, 0)
}

// DrainCapacityType empties every pool of a capacity type.
func (f *EC2) DrainCapacityType(capacityType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, it := range f.types {
		for z := range it.zones {
			f.capacity[PoolKey{capacityType, name, z}] = 0
		}
	}
}

// SetPoolError makes every launch attempt on a pool fail with code (e.g.
// Unsupported, SpotMaxPriceTooLow, InsufficientFreeAddressesInSubnet) until
// cleared with an empty code.
func (f *EC2) SetPoolError(capacityType, instanceType, zone, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := PoolKey{capacityType, instanceType, zone}
	if code == "" {
		delete(f.poolErrors, k)
		return
	}
	f.poolErrors[k] = poolError{code, message}
}

// SetSpotQuota caps the number of live Spot instances (the account's Spot
// quota); beyond it CreateFleet reports MaxSpotInstanceCountExceeded. n < 0
// removes the cap.
func (f *EC2) SetSpotQuota(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spotQuota = n
}

// SetVCPUQuota caps the vCPUs of live on-demand instances; beyond it
// CreateFleet reports VcpuLimitExceeded. n < 0 removes the cap.
func (f *EC2) SetVCPUQuota(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vcpuQuota = n
}

// ThrottleNext makes the next n calls of op ("" = any operation) fail with
// RequestLimitExceeded, as EC2 throttles.
func (f *EC2) ThrottleNext(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle[op] += n
}

// FailNext makes the next call of op ("" = any) return err.
func (f *EC2) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[op] = append(f.failNext[op], err)
}

// SetHook installs a function called, outside the fake's lock, at the start
// of every operation. It may block (latency on a channel or fake clock),
// or return an error that the operation then returns. nil removes it.
func (f *EC2) SetHook(hook func(ctx context.Context, op string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// Calls returns every call made so far, in order.
func (f *EC2) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// CallCount returns how many calls of op were made.
func (f *EC2) CallCount(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Op == op {
			n++
		}
	}
	return n
}

// CreateFleetInputs returns the input of every CreateFleet call, in order.
func (f *EC2) CreateFleetInputs() []*ec2.CreateFleetInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*ec2.CreateFleetInput
	for _, c := range f.calls {
		if in, ok := c.Input.(*ec2.CreateFleetInput); ok {
			out = append(out, in)
		}
	}
	return out
}

// ResetCalls forgets recorded calls.
func (f *EC2) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Instances returns a copy of every instance the fake has launched, live or
// terminated, in launch order, with states brought up to date.
func (f *EC2) Instances() []types.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]types.Instance, 0, len(f.instanceIDs))
	for _, id := range f.instanceIDs {
		in := f.instances[id]
		f.advance(in)
		out = append(out, in.inst)
	}
	return out
}

// LiveInstances returns the instances that are pending or running.
func (f *EC2) LiveInstances() []types.Instance {
	var out []types.Instance
	for _, in := range f.Instances() {
		if n := in.State.Name; n == types.InstanceStateNamePending || n == types.InstanceStateNameRunning {
			out = append(out, in)
		}
	}
	return out
}

// begin runs the hook and the injected faults for one call and records it.
// It returns the error the call must return, if any.
func (f *EC2) begin(ctx context.Context, op string, input any) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	var err error
	if hook != nil {
		err = hook(ctx, op)
	}
	if err == nil {
		err = ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		err = f.injected(op)
	}
	f.calls = append(f.calls, Call{Op: op, Input: input, Time: f.clock.Now(), Err: err})
	return err
}

func (f *EC2) injected(op string) error {
	for _, key := range []string{op, ""} {
		if f.throttle[key] > 0 {
			f.throttle[key]--
			return APIError("RequestLimitExceeded", "Request limit exceeded.")
		}
	}
	for _, key := range []string{op, ""} {
		if q := f.failNext[key]; len(q) > 0 {
			f.failNext[key] = q[1:]
			return q[0]
		}
	}
	return nil
}

// finish records the error a call returned after passing begin.
func (f *EC2) finish(err error) error {
	if err != nil {
		f.mu.Lock()
		f.calls[len(f.calls)-1].Err = err
		f.mu.Unlock()
	}
	return err
}

// APIError builds a top-level EC2 error the way the SDK surfaces one from
// the wire: a *smithy.GenericAPIError with EC2's code. Server-side codes get
// the server fault, as the SDK's EC2 query protocol reports them.
func APIError(code, message string) error {
	fault := smithy.FaultClient
	switch code {
	case "InternalError", "InternalFailure", "ServerInternal", "ServiceUnavailable", "Unavailable":
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: message, Fault: fault}
}

func (f *EC2) remaining(k PoolKey) int {
	if n, ok := f.capacity[k]; ok {
		return n
	}
	return f.opts.DefaultCapacity
}

// spotPriceAt returns the Spot price in effect at t, if any.
func (f *EC2) spotPriceAt(instanceType, zone string, t time.Time) (float64, bool) {
	h := f.spotPrices[PoolKey{Spot, instanceType, zone}]
	for i := len(h) - 1; i >= 0; i-- {
		if !h[i].at.After(t) {
			return h[i].price, true
		}
	}
	if len(h) > 0 {
		return h[0].price, true
	}
	return 0, false
}

func (f *EC2) supportsSpot(it *instanceType) bool {
	return slices.Contains(it.info.SupportedUsageClasses, types.UsageClassTypeSpot)
}

// offered reports whether the pool exists at all.
func (f *EC2) offered(k PoolKey) bool {
	it := f.types[k.InstanceType]
	if it == nil || !it.zones[k.Zone] {
		return false
	}
	if k.CapacityType == Spot {
		_, priced := f.spotPriceAt(k.InstanceType, k.Zone, f.clock.Now())
		return f.supportsSpot(it) && priced
	}
	return k.CapacityType == OnDemand
}

func (f *EC2) price(k PoolKey) float64 {
	if k.CapacityType == Spot {
		p, _ := f.spotPriceAt(k.InstanceType, k.Zone, f.clock.Now())
		return p
	}
	if it := f.types[k.InstanceType]; it != nil {
		return it.odPrice
	}
	return 0
}

func ptr[T any](v T) *T { return &v }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// page returns the page of items that nextToken points at, and the token of
// the next page. Tokens are opaque to callers; here they are offsets.
func page[T any](items []T, maxResults *int32, nextToken *string, maxAllowed int) ([]T, *string, error) {
	start := 0
	if nextToken != nil && *nextToken != "" {
		n, err := strconv.Atoi(*nextToken)
		if err != nil || n < 0 || n > len(items) {
			return nil, nil, APIError("InvalidParameterValue", fmt.Sprintf("The NextToken %q is not valid.", *nextToken))
		}
		start = n
	}
	size := maxAllowed
	if maxResults != nil {
		if *maxResults < 5 || int(*maxResults) > maxAllowed {
			return nil, nil, APIError("InvalidParameterValue", fmt.Sprintf("MaxResults must be between 5 and %d, got %d.", maxAllowed, *maxResults))
		}
		size = int(*maxResults)
	}
	end := min(start+size, len(items))
	var next *string
	if end < len(items) {
		next = ptr(strconv.Itoa(end))
	}
	return items[start:end], next, nil
}
