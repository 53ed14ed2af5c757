package aws

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider"
	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
)

// When EC2 reports only some of the pools it could not use, the provider
// marks those, tries the rest of Spot, and falls back only once no Spot
// pool is left.
func TestRetriesRemainingSpotPoolsBeforeFallingBack(t *testing.T) {
	e := newEnv(t)
	e.ec2.DrainCapacityType(fake.Spot)
	e.withAPI(&tamper{EC2API: e.ec2, after: func(o *ec2.CreateFleetOutput) {
		if len(o.Errors) > 4 {
			o.Errors = o.Errors[:4] // EC2 said less than it tried
		}
	}})
	node, err := e.p.Create(context.Background(), e.claim())
	if err != nil {
		t.Fatal(err)
	}
	ins := e.ec2.CreateFleetInputs()
	var cts []string
	for _, in := range ins {
		cts = append(cts, string(in.TargetCapacitySpecification.DefaultTargetCapacityType))
	}
	// 12 spot pools, 4 reported per call: spot, spot, spot, then on-demand.
	if len(ins) != 4 || cts[2] != "spot" || cts[3] != "on-demand" || node.Labels[offerings.LabelCapacityType] != "on-demand" {
		t.Errorf("calls = %v, node %s; want three spot attempts then on-demand", cts, node.Labels[offerings.LabelCapacityType])
	}
	for i := 1; i < 3; i++ {
		if a, b := len(overrides(ins[i-1].LaunchTemplateConfigs)), len(overrides(ins[i].LaunchTemplateConfigs)); b != a-4 {
			t.Errorf("attempt %d asked for %d overrides after %d; want the 4 reported pools dropped", i, b, a)
		}
	}
}

// A capacity error that names no override rules out every pool of the
// request.
func TestUnattributedCapacityErrorMarksTheWholeRequest(t *testing.T) {
	e := newEnv(t)
	e.ec2.DrainCapacityType(fake.Spot)
	e.withAPI(&tamper{EC2API: e.ec2, after: func(o *ec2.CreateFleetOutput) {
		if len(o.Instances) == 0 && len(o.Errors) > 0 {
			code, msg := o.Errors[0].ErrorCode, o.Errors[0].ErrorMessage
			o.Errors = o.Errors[:1]
			o.Errors[0].ErrorCode, o.Errors[0].ErrorMessage, o.Errors[0].LaunchTemplateAndOverrides = code, msg, nil
		}
	}})
	_, err := e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot")))
	if !cloudprovider.IsInsufficientCapacity(err) {
		t.Fatalf("err = %v, want ICE", err)
	}
	for _, k := range spotPools(e.catalog) {
		if !e.unavail.IsUnavailable(k.CapacityType, k.InstanceType, k.Zone) {
			t.Errorf("%s not marked", k)
		}
	}
}

func TestInstanceLimitMarksTheTypeInEveryZone(t *testing.T) {
	e := newEnv(t)
	e.ec2.SetPoolError(fake.OnDemand, "c6g.large", "us-east-1a", "InstanceLimitExceeded", "Your quota allows for 0 more running instance(s).")
	claim := e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "on-demand"))
	node, err := e.p.Create(context.Background(), claim)
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[offerings.LabelInstanceType] == "c6g.large" && node.Labels[offerings.LabelZone] == "us-east-1a" {
		t.Error("launched the refused pool")
	}
	for _, z := range zones {
		if !e.unavail.IsUnavailable("on-demand", "c6g.large", z) {
			t.Errorf("c6g.large not marked in %s", z)
		}
	}
	if e.unavail.IsUnavailable("spot", "c6g.large", "us-east-1a") {
		t.Error("an on-demand limit marked spot")
	}
}

// Many concurrent Creates against scarce capacity: every launched instance
// is a returned node, every failure is an InsufficientCapacityError, and
// nothing is left running unaccounted.
func TestConcurrentCreatesNeverLeak(t *testing.T) {
	e := newEnv(t)
	total := 0
	for _, it := range e.catalog {
		for _, z := range zones {
			e.ec2.SetCapacity(fake.Spot, it.Name, z, 1)
			e.ec2.SetCapacity(fake.OnDemand, it.Name, z, 1)
			total += 2
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	nodes := map[string]bool{}
	ice := 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, err := e.p.Create(context.Background(), e.claim())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if nodes[node.Spec.ProviderID] {
					t.Errorf("node %s returned twice", node.Spec.ProviderID)
				}
				nodes[node.Spec.ProviderID] = true
			case cloudprovider.IsInsufficientCapacity(err):
				ice++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	live := e.ec2.LiveInstances()
	if len(live) != len(nodes) || len(nodes)+ice != 40 {
		t.Errorf("live %d, nodes %d, ICE %d; want live == nodes and nodes+ICE == 40", len(live), len(nodes), ice)
	}
	for _, in := range live {
		if !nodes[ProviderID(*in.Placement.AvailabilityZone, *in.InstanceId)] {
			t.Errorf("instance %s runs without a node", *in.InstanceId)
		}
	}
	if len(nodes) > total {
		t.Errorf("%d nodes from %d pools of one instance each", len(nodes), total)
	}
}

// A Spot fleet that launches nothing and reports nothing still falls back
// to on-demand rather than asking for the same pools again.
func TestSilentSpotFailureFallsBack(t *testing.T) {
	e := newEnv(t)
	e.ec2.DrainCapacityType(fake.Spot)
	e.withAPI(&tamper{EC2API: e.ec2, after: func(o *ec2.CreateFleetOutput) { o.Errors = nil }})
	node, err := e.p.Create(context.Background(), e.claim())
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[offerings.LabelCapacityType] != "on-demand" || e.ec2.CallCount(fake.OpCreateFleet) != 2 {
		t.Errorf("node %s after %d calls; want on-demand after 2", node.Labels[offerings.LabelCapacityType], e.ec2.CallCount(fake.OpCreateFleet))
	}
	// Spot-only: an InsufficientCapacityError listing every pool asked for.
	_, err = e.p.Create(context.Background(), e.claim(withReq(offerings.LabelCapacityType, corev1.NodeSelectorOpIn, "spot")))
	var ice *cloudprovider.InsufficientCapacityError
	if !errors.As(err, &ice) || len(ice.Tried) != 12 {
		t.Errorf("err = %v; want ICE with the 12 spot pools", err)
	}
}
