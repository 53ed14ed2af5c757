package aws

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// maxFleetAttempts bounds the CreateFleet calls of one Create per capacity
// type. Each attempt drops the pools the previous one was refused, so more
// than one is needed only when EC2 reports fewer pools than it tried; Spot
// running out of attempts still leaves on-demand its own.
const maxFleetAttempts = 3

// Provider is the EC2 implementation of cloudprovider.CloudProvider.
type Provider struct {
	api         EC2API
	opts        Options
	unavailable UnavailableOfferings
	clock       clock.Clock
	log         *slog.Logger

	// archs are the architectures with a launch template, sorted.
	archs []string

	mu      sync.Mutex
	subnets subnetCache
}

var _ cloudprovider.CloudProvider = (*Provider)(nil)

// New returns a Provider launching through api.
func New(api EC2API, opts Options) (*Provider, error) {
	if api == nil {
		return nil, fmt.Errorf("aws provider: EC2 client must not be nil")
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	archs := make([]string, 0, len(opts.LaunchTemplates))
	for a := range opts.LaunchTemplates {
		archs = append(archs, a)
	}
	slices.Sort(archs)
	return &Provider{api: api, opts: opts, unavailable: opts.Unavailable, clock: opts.Clock, log: opts.Logger, archs: archs}, nil
}

func validateClaim(claim *scheduling.NodeClaim) error {
	if claim == nil {
		return fmt.Errorf("launching claim: claim must not be nil")
	}
	if claim.Template == nil {
		return fmt.Errorf("launching claim %q: Template: must not be nil", claim.Hostname)
	}
	if len(claim.InstanceTypes) == 0 {
		return fmt.Errorf("launching claim %q: InstanceTypes: must not be empty", claim.Hostname)
	}
	return nil
}

func (p *Provider) spotStrategy(claim *scheduling.NodeClaim) (types.SpotAllocationStrategy, error) {
	v, ok := claim.Template.Labels[LabelSpotAllocationStrategy]
	if !ok {
		return p.opts.SpotAllocationStrategy, nil
	}
	s := types.SpotAllocationStrategy(v)
	if !slices.Contains(validSpotStrategies, s) {
		return "", fmt.Errorf("launching claim %q: NodePool %q: labels[%s]: %q is not one of %v", claim.Hostname, claim.Template.NodePool, LabelSpotAllocationStrategy, v, validSpotStrategies)
	}
	return s, nil
}

// Create launches one instance for the claim with instant CreateFleet
// calls: Spot first when allowed, falling back to on-demand within the same
// call once no Spot pool is left. Every pool EC2 refuses is marked in the
// unavailable-offerings cache. See the package documentation.
func (p *Provider) Create(ctx context.Context, claim *scheduling.NodeClaim) (*corev1.Node, error) {
	if err := validateClaim(claim); err != nil {
		return nil, err
	}
	strategy, err := p.spotStrategy(claim)
	if err != nil {
		return nil, err
	}
	allowSpot := claim.Requirements.Allows(offerings.LabelCapacityType, offerings.CapacityTypeSpot)
	allowOD := claim.Requirements.Allows(offerings.LabelCapacityType, offerings.CapacityTypeOnDemand)
	if !allowSpot && !allowOD {
		return nil, fmt.Errorf("launching claim %q: Requirements: %s allows neither spot nor on-demand", claim.Hostname, offerings.LabelCapacityType)
	}
	var (
		tried      []cloudprovider.OfferingKey
		reason     = "no available offering"
		previous   []pool
		previousCT string
	)
	attempts := map[string]int{}
	for {
		subnets, err := p.zonalSubnets(ctx)
		if err != nil {
			return nil, fmt.Errorf("launching claim %q: %w", claim.Hostname, err)
		}
		spotLeft := allowSpot && attempts[offerings.CapacityTypeSpot] < maxFleetAttempts
		odLeft := allowOD && attempts[offerings.CapacityTypeOnDemand] < maxFleetAttempts
		ct, pools := p.choosePools(claim, spotLeft, odLeft, subnets)
		if len(pools) == 0 {
			break
		}
		if ct == previousCT && samePools(pools, previous) {
			// EC2 refused these pools without saying which: asking again
			// would get the same answer. Give up on this capacity type.
			attempts[ct] = maxFleetAttempts
			continue
		}
		previous, previousCT = pools, ct
		attempts[ct]++
		in := p.fleetRequest(claim, ct, pools, strategy, newClientToken())
		out, err := p.api.CreateFleet(ctx, in)
		if err != nil {
			// No instance can have launched without a response; a retry of
			// the same token by the SDK would have returned it.
			return nil, fmt.Errorf("launching claim %q: CreateFleet (%s, %d overrides): %w", claim.Hostname, ct, len(pools), err)
		}
		res := p.handleFleetErrors(ctx, claim, ct, pools, subnets, out.Errors)
		if inst, ok := p.takeInstance(ctx, claim, out); ok {
			return p.launched(ctx, claim, inst)
		}
		if len(res.other) > 0 {
			return nil, fmt.Errorf("launching claim %q: CreateFleet (%s) launched nothing: %s", claim.Hostname, ct, strings.Join(res.other, "; "))
		}
		tried = append(tried, res.failed...)
		if len(out.Errors) == 0 {
			// Nothing launched and nothing said: count every pool as tried.
			for _, pl := range pools {
				tried = append(tried, pl.key(ct))
			}
		}
		if res.reason != "" {
			reason = res.reason
		}
		p.log.InfoContext(ctx, "fleet launched nothing", "claim", claim.Hostname, "nodepool", claim.Template.NodePool,
			"capacityType", ct, "overrides", len(pools), "reason", reason)
	}
	return nil, &cloudprovider.InsufficientCapacityError{Tried: dedupe(tried), Reason: reason}
}

func samePools(a, b []pool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].it != b[i].it || a[i].zone != b[i].zone || a[i].subnetID != b[i].subnetID {
			return false
		}
	}
	return true
}

func dedupe(keys []cloudprovider.OfferingKey) []cloudprovider.OfferingKey {
	seen := make(map[cloudprovider.OfferingKey]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

type fleetResult struct {
	failed []cloudprovider.OfferingKey
	other  []string
	reason string
}

// handleFleetErrors marks what each CreateFleetError rules out and sorts
// the errors into capacity failures and others.
func (p *Provider) handleFleetErrors(ctx context.Context, claim *scheduling.NodeClaim, ct string, pools []pool, subnets map[string]string, errs []types.CreateFleetError) fleetResult {
	var res fleetResult
	for i := range errs {
		e := &errs[i]
		code, msg := deref(e.ErrorCode), deref(e.ErrorMessage)
		errCT := ct
		if e.Lifecycle != "" {
			errCT = string(e.Lifecycle)
		}
		scope := ClassifyFleetError(code)
		if scope == ScopeNone {
			res.other = append(res.other, code+": "+msg)
			continue
		}
		res.reason = code + ": " + msg
		keys, subnetIDs := errorPools(e, errCT, pools)
		res.failed = append(res.failed, keys...)
		why := "CreateFleet " + code
		switch scope {
		case ScopeOffering:
			for _, k := range keys {
				p.unavailable.MarkUnavailable(ctx, why, k.CapacityType, k.InstanceType, k.Zone)
			}
		case ScopeInstanceType:
			for _, k := range keys {
				for zone := range subnets {
					p.unavailable.MarkUnavailable(ctx, why, k.CapacityType, k.InstanceType, zone)
				}
			}
		case ScopeFamily:
			for _, k := range keys {
				p.unavailable.MarkFamilyUnavailable(ctx, why, k.CapacityType, offerings.Family(k.InstanceType), "")
			}
		case ScopeCapacityType:
			p.unavailable.MarkCapacityTypeUnavailable(ctx, why, errCT, "")
		case ScopeSubnet:
			for _, id := range subnetIDs {
				p.markSubnetFull(id)
			}
		}
		p.log.DebugContext(ctx, "fleet error", "claim", claim.Hostname, "code", code, "scope", scope.String(), "pools", len(keys))
	}
	return res
}

// errorPools maps a CreateFleetError back to the pools it is about: the
// override it echoes, or every pool of the request when it echoes none.
func errorPools(e *types.CreateFleetError, ct string, pools []pool) ([]cloudprovider.OfferingKey, []string) {
	var ov *types.FleetLaunchTemplateOverrides
	if e.LaunchTemplateAndOverrides != nil {
		ov = e.LaunchTemplateAndOverrides.Overrides
	}
	if ov == nil || ov.InstanceType == "" {
		keys := make([]cloudprovider.OfferingKey, 0, len(pools))
		subnetIDs := make([]string, 0, len(pools))
		for _, pl := range pools {
			keys = append(keys, pl.key(ct))
			subnetIDs = append(subnetIDs, pl.subnetID)
		}
		return keys, subnetIDs
	}
	zone, subnet := deref(ov.AvailabilityZone), deref(ov.SubnetId)
	if zone == "" || subnet == "" {
		for _, pl := range pools {
			if string(ov.InstanceType) == pl.it.Name && (pl.subnetID == subnet || pl.zone == zone) {
				zone, subnet = pl.zone, pl.subnetID
				break
			}
		}
	}
	if zone == "" {
		return nil, nil
	}
	return []cloudprovider.OfferingKey{{CapacityType: ct, InstanceType: string(ov.InstanceType), Zone: zone}}, []string{subnet}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// launchedInstance is what CreateFleet says about the instance it launched.
type launchedInstance struct {
	id, instanceType, zone, capacityType, subnetID string
}

// takeInstance returns the first launched instance and terminates any
// others (a target capacity of 1 should never launch more, but an instance
// must never be left behind untracked).
func (p *Provider) takeInstance(ctx context.Context, claim *scheduling.NodeClaim, out *ec2.CreateFleetOutput) (launchedInstance, bool) {
	var all []launchedInstance
	for _, fi := range out.Instances {
		zone, subnet := deref(fi.AvailabilityZone), deref(fi.SubnetId)
		if fi.LaunchTemplateAndOverrides != nil && fi.LaunchTemplateAndOverrides.Overrides != nil {
			ov := fi.LaunchTemplateAndOverrides.Overrides
			if zone == "" {
				zone = deref(ov.AvailabilityZone)
			}
			if subnet == "" {
				subnet = deref(ov.SubnetId)
			}
		}
		ct := string(fi.Lifecycle)
		if ct == "" {
			ct = offerings.CapacityTypeOnDemand
		}
		for _, id := range fi.InstanceIds {
			all = append(all, launchedInstance{id: id, instanceType: string(fi.InstanceType), zone: zone, capacityType: ct, subnetID: subnet})
		}
	}
	if len(all) == 0 {
		return launchedInstance{}, false
	}
	if len(all) > 1 {
		extra := make([]string, 0, len(all)-1)
		for _, in := range all[1:] {
			extra = append(extra, in.id)
		}
		p.log.WarnContext(ctx, "fleet launched more than one instance; terminating the extras", "claim", claim.Hostname, "instances", extra)
		p.terminate(ctx, extra)
	}
	return all[0], true
}

// launched turns the launched instance into the node it will register as.
// If that fails the instance is terminated, so nothing is left behind.
func (p *Provider) launched(ctx context.Context, claim *scheduling.NodeClaim, li launchedInstance) (*corev1.Node, error) {
	p.tookAddress(li.subnetID)
	var it *offerings.InstanceType
	for _, t := range claim.InstanceTypes {
		if t.Name == li.instanceType {
			it = t
			break
		}
	}
	if it == nil || li.zone == "" {
		p.terminate(ctx, []string{li.id})
		return nil, fmt.Errorf("launching claim %q: CreateFleet launched %s as %q in zone %q, which the claim cannot describe; terminated it", claim.Hostname, li.id, li.instanceType, li.zone)
	}
	name := li.id
	// The private DNS name is the node name kubelet registers with; it is
	// not in CreateFleet's answer. A failure here is not a reason to lose
	// the instance: the id is a valid name too.
	if dns, err := p.privateDNSName(ctx, li.id); err != nil {
		p.log.WarnContext(ctx, "describing launched instance failed; naming the node by instance id", "claim", claim.Hostname, "instance", li.id, "error", err)
	} else if dns != "" {
		name = dns
	}
	node := p.node(name, li.id, li.zone, li.capacityType, it, claim.Template.NodePool)
	for k, v := range claim.Labels() {
		if _, set := node.Labels[k]; !set {
			node.Labels[k] = v
		}
	}
	node.Spec.Taints = append(slices.Clone(claim.Template.Taints), claim.Template.StartupTaints...)
	node.Annotations = map[string]string{TagClaim: claim.Hostname}
	p.log.InfoContext(ctx, "launched instance", "claim", claim.Hostname, "nodepool", claim.Template.NodePool,
		"instance", li.id, "instanceType", li.instanceType, "zone", li.zone, "capacityType", li.capacityType)
	return node, nil
}

func (p *Provider) privateDNSName(ctx context.Context, id string) (string, error) {
	out, err := p.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return "", err
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if deref(in.InstanceId) == id {
				return deref(in.PrivateDnsName), nil
			}
		}
	}
	return "", nil
}

// terminate terminates instances, logging (not returning) a failure: the
// instances carry fleetpack's tags, so List still finds them for cleanup.
func (p *Provider) terminate(ctx context.Context, ids []string) {
	// A cancelled caller must not stop the cleanup of what it launched.
	ctx = context.WithoutCancel(ctx)
	if _, err := p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		p.log.ErrorContext(ctx, "terminating instances failed; they stay tagged for List", "instances", ids, "error", err)
	}
}

// node builds the node an instance registers as: labels of the instance
// type and offering, capacity and allocatable of the type.
func (p *Provider) node(name, id, zone, capacityType string, it *offerings.InstanceType, nodePool string) *corev1.Node {
	labels := make(map[string]string, len(it.Labels)+8)
	for k, v := range it.Labels {
		labels[k] = v
	}
	labels[offerings.LabelInstanceType] = it.Name
	labels[offerings.LabelZone] = zone
	labels[offerings.LabelCapacityType] = capacityType
	labels[offerings.LabelHostname] = name
	if labels[offerings.LabelArch] == "" {
		labels[offerings.LabelArch] = "amd64"
	}
	if labels[offerings.LabelOS] == "" {
		labels[offerings.LabelOS] = "linux"
	}
	if nodePool != "" {
		labels[offerings.LabelNodePool] = nodePool
	}
	if p.opts.Region != "" {
		labels[offerings.LabelRegion] = p.opts.Region
	}
	node := &corev1.Node{
		Spec: corev1.NodeSpec{ProviderID: ProviderID(zone, id)},
		Status: corev1.NodeStatus{
			Capacity:    it.Capacity.DeepCopy(),
			Allocatable: it.Allocatable(),
		},
	}
	node.Name = name
	node.Labels = labels
	return node
}

// ProviderID renders the Kubernetes provider id of an EC2 instance:
// aws:///<zone>/<instance id>.
func ProviderID(zone, instanceID string) string {
	return "aws:///" + zone + "/" + instanceID
}

// ParseProviderID returns the instance id of an aws:///<zone>/<id> (or
// aws:///<id>) provider id.
func ParseProviderID(providerID string) (string, error) {
	rest, ok := strings.CutPrefix(providerID, "aws:///")
	if !ok {
		return "", fmt.Errorf("provider id %q: must start with aws:///", providerID)
	}
	parts := strings.Split(rest, "/")
	id := parts[len(parts)-1]
	if len(parts) > 2 || !strings.HasPrefix(id, "i-") || len(id) < 3 {
		return "", fmt.Errorf("provider id %q: want aws:///<zone>/i-<id>", providerID)
	}
	return id, nil
}

// Delete terminates the instance behind providerID. An instance EC2 does
// not know, or one already terminated, is a *cloudprovider.NotFoundError.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	id, err := ParseProviderID(providerID)
	if err != nil {
		return err
	}
	out, err := p.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		if isNotFound(err) {
			return &cloudprovider.NotFoundError{ProviderID: providerID}
		}
		return fmt.Errorf("terminating %s: %w", providerID, err)
	}
	for _, ch := range out.TerminatingInstances {
		if deref(ch.InstanceId) == id && ch.PreviousState != nil && ch.PreviousState.Name == types.InstanceStateNameTerminated {
			return &cloudprovider.NotFoundError{ProviderID: providerID}
		}
	}
	p.log.InfoContext(ctx, "terminated instance", "instance", id)
	return nil
}

// Get returns the node of a live instance fleetpack launched in this
// cluster, or a *cloudprovider.NotFoundError. The node carries what the
// instance says (type, zone, capacity type, NodePool tag, the type's
// labels and capacity), not the template's labels or taints.
func (p *Provider) Get(ctx context.Context, providerID string) (*corev1.Node, error) {
	id, err := ParseProviderID(providerID)
	if err != nil {
		return nil, err
	}
	out, err := p.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		if isNotFound(err) {
			return nil, &cloudprovider.NotFoundError{ProviderID: providerID}
		}
		return nil, fmt.Errorf("describing %s: %w", providerID, err)
	}
	catalog, err := p.catalogByName(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			in := &r.Instances[i]
			if deref(in.InstanceId) == id && live(in) && p.owns(in) {
				return p.instanceNode(in, catalog), nil
			}
		}
	}
	return nil, &cloudprovider.NotFoundError{ProviderID: providerID}
}

// List returns the node of every pending or running instance tagged as
// fleetpack's in this cluster.
func (p *Provider) List(ctx context.Context) ([]*corev1.Node, error) {
	catalog, err := p.catalogByName(ctx)
	if err != nil {
		return nil, err
	}
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: strPtr("tag:" + TagManagedBy), Values: []string{ManagedBy}},
		{Name: strPtr("tag:" + TagClusterPrefix + p.opts.ClusterName), Values: []string{"owned"}},
		{Name: strPtr("instance-state-name"), Values: []string{string(types.InstanceStateNamePending), string(types.InstanceStateNameRunning)}},
	}}
	var nodes []*corev1.Node
	pages := ec2.NewDescribeInstancesPaginator(p.api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing instances: %w", err)
		}
		for _, r := range page.Reservations {
			for i := range r.Instances {
				if live(&r.Instances[i]) && p.owns(&r.Instances[i]) {
					nodes = append(nodes, p.instanceNode(&r.Instances[i], catalog))
				}
			}
		}
	}
	return nodes, nil
}

func live(in *types.Instance) bool {
	return in.State != nil && (in.State.Name == types.InstanceStateNamePending || in.State.Name == types.InstanceStateNameRunning)
}

func (p *Provider) owns(in *types.Instance) bool {
	return tag(in.Tags, TagManagedBy) == ManagedBy && tag(in.Tags, TagClusterPrefix+p.opts.ClusterName) == "owned"
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if deref(t.Key) == key {
			return deref(t.Value)
		}
	}
	return ""
}

func (p *Provider) catalogByName(ctx context.Context) (map[string]*offerings.InstanceType, error) {
	its, err := p.opts.Catalog.InstanceTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the instance-type catalog: %w", err)
	}
	out := make(map[string]*offerings.InstanceType, len(its))
	for _, it := range its {
		out[it.Name] = it
	}
	return out, nil
}

func (p *Provider) instanceNode(in *types.Instance, catalog map[string]*offerings.InstanceType) *corev1.Node {
	id := deref(in.InstanceId)
	zone := ""
	if in.Placement != nil {
		zone = deref(in.Placement.AvailabilityZone)
	}
	ct := offerings.CapacityTypeOnDemand
	if in.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		ct = offerings.CapacityTypeSpot
	}
	it := catalog[string(in.InstanceType)]
	if it == nil {
		// Unknown to the catalog: still report it, so it is not leaked.
		it = &offerings.InstanceType{Name: string(in.InstanceType), Labels: map[string]string{}}
		if in.Architecture == types.ArchitectureValuesArm64 {
			it.Labels[offerings.LabelArch] = "arm64"
		}
	}
	name := deref(in.PrivateDnsName)
	if name == "" {
		name = id
	}
	node := p.node(name, id, zone, ct, it, tag(in.Tags, TagNodePool))
	if c := tag(in.Tags, TagClaim); c != "" {
		node.Annotations = map[string]string{TagClaim: c}
	}
	if in.LaunchTime != nil {
		node.CreationTimestamp.Time = *in.LaunchTime
	}
	return node
}

// InstanceTypes returns the catalog with the unavailable offerings marked.
func (p *Provider) InstanceTypes(ctx context.Context) ([]*offerings.InstanceType, error) {
	its, err := p.opts.Catalog.InstanceTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the instance-type catalog: %w", err)
	}
	return p.unavailable.Apply(its), nil
}
