package provisioning

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// fakeCloud is an in-memory CloudProvider that launches the cheapest offering
// a claim allows, like EC2's lowest-price strategy, and refuses pools the test
// marks as out of capacity (reporting every pool it tried, and remembering
// them as unavailable, as the AWS provider's ICE cache does).
type fakeCloud struct {
	mu        sync.Mutex
	catalog   []*offerings.InstanceType
	noCap     map[cloudprovider.OfferingKey]bool
	instances map[string]*corev1.Node // by providerID
	createErr error
	creates   int
	next      int
}

var _ cloudprovider.CloudProvider = (*fakeCloud)(nil)

func newFakeCloud(catalog []*offerings.InstanceType) *fakeCloud {
	return &fakeCloud{catalog: catalog, noCap: map[cloudprovider.OfferingKey]bool{}, instances: map[string]*corev1.Node{}}
}

func (f *fakeCloud) InstanceTypes(ctx context.Context) ([]*offerings.InstanceType, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Report refused pools as unavailable, copying what changes.
	return maskOfferings(f.catalog, f.noCapSeen()), nil
}

// noCapSeen: only pools that were tried and refused count as known-unavailable.
func (f *fakeCloud) noCapSeen() map[cloudprovider.OfferingKey]bool {
	out := map[cloudprovider.OfferingKey]bool{}
	for k, tried := range f.noCap {
		if tried {
			out[k] = true
		}
	}
	return out
}

func (f *fakeCloud) setNoCapacity(keys ...cloudprovider.OfferingKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.noCap[k] = false // refused when tried; known after that
	}
}

func (f *fakeCloud) Create(ctx context.Context, claim *scheduling.NodeClaim) (*corev1.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if f.createErr != nil {
		return nil, f.createErr
	}
	type choice struct {
		it *offerings.InstanceType
		o  offerings.Offering
	}
	// Like CreateFleet, one call buys one capacity type: Spot when the claim
	// allows any Spot offering, else on-demand.
	var choices []choice
	spot := false
	for _, it := range claim.InstanceTypes {
		for _, o := range claim.Offerings(it) {
			choices = append(choices, choice{it, o})
			spot = spot || o.CapacityType == offerings.CapacityTypeSpot
		}
	}
	if spot {
		choices = slices.DeleteFunc(choices, func(c choice) bool { return c.o.CapacityType != offerings.CapacityTypeSpot })
	}
	slices.SortFunc(choices, func(a, b choice) int {
		return cmp.Or(cmp.Compare(a.o.Price, b.o.Price), strings.Compare(a.it.Name, b.it.Name), strings.Compare(a.o.Zone, b.o.Zone))
	})
	var tried []cloudprovider.OfferingKey
	for _, c := range choices {
		key := cloudprovider.OfferingKey{CapacityType: c.o.CapacityType, InstanceType: c.it.Name, Zone: c.o.Zone}
		if _, refused := f.noCap[key]; refused {
			f.noCap[key] = true
			tried = append(tried, key)
			continue
		}
		f.next++
		id := fmt.Sprintf("i-%017d", f.next)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:   fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", f.next/256, f.next%256),
				Labels: map[string]string{},
			},
			Spec: corev1.NodeSpec{
				ProviderID: "aws:///" + c.o.Zone + "/" + id,
				Taints:     append(slices.Clone(claim.Template.Taints), claim.Template.StartupTaints...),
			},
			Status: corev1.NodeStatus{Capacity: c.it.Capacity.DeepCopy(), Allocatable: c.it.Allocatable()},
		}
		maps.Copy(node.Labels, claim.Labels())
		maps.Copy(node.Labels, c.it.Labels)
		node.Labels[offerings.LabelZone] = c.o.Zone
		node.Labels[offerings.LabelCapacityType] = c.o.CapacityType
		node.Labels[offerings.LabelHostname] = node.Name
		f.instances[node.Spec.ProviderID] = node.DeepCopy()
		return node, nil
	}
	return nil, &cloudprovider.InsufficientCapacityError{Tried: tried, Reason: "InsufficientInstanceCapacity"}
}

func (f *fakeCloud) Delete(ctx context.Context, providerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.instances[providerID]; !ok {
		return &cloudprovider.NotFoundError{ProviderID: providerID}
	}
	delete(f.instances, providerID)
	return nil
}

func (f *fakeCloud) Get(ctx context.Context, providerID string) (*corev1.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.instances[providerID]
	if !ok {
		return nil, &cloudprovider.NotFoundError{ProviderID: providerID}
	}
	return n.DeepCopy(), nil
}

func (f *fakeCloud) List(ctx context.Context) ([]*corev1.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*corev1.Node
	for _, id := range slices.Sorted(maps.Keys(f.instances)) {
		out = append(out, f.instances[id].DeepCopy())
	}
	return out, nil
}

func (f *fakeCloud) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.instances)
}

var errBoom = errors.New("boom")
