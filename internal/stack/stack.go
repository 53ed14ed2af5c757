// Package stack builds the whole of fleetpack for tests in one call: a
// clock, a cluster (a MemoryCluster unless the test brings one), the fake
// EC2 built from the embedded catalog, the real AWS provider on it, the
// unavailable-offerings cache and a Provisioner over the given NodePools.
// Tests then say only what differs (pools, delays, a real cluster).
package stack

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	"github.com/fleetpack/fleetpack/cloudprovider/aws/fake"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
)

// Epoch is when a stack's fake clock starts.
var Epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Clock is what every part of the stack needs of a clock; both
// clock.RealClock and the fake clock have it.
type Clock interface {
	clock.WithTicker
	clock.WithDelayedExecution
}

// Options configures a Stack. Zero values take the defaults.
type Options struct {
	// Pools are the NodePools, as fleetpack.dev/v1 YAML (required).
	Pools string
	// Clock drives every part; default a fake clock at Epoch.
	Clock Clock
	// Cluster is the cluster to provision for; default a MemoryCluster on
	// Clock with MemoryCluster options.
	Cluster provisioning.Cluster
	// MemoryCluster configures the default cluster.
	MemoryCluster provisioning.MemoryClusterOptions
	// Provisioner configures the Provisioner; its Clock and Logger default
	// to the stack's.
	Provisioner provisioning.Options
	// ClusterName names the cluster to EC2 (default "fleetpack-test").
	ClusterName string
	// Capacity is the fake EC2's capacity per pool (default 100).
	Capacity int
	// Logger (default: discard).
	Logger *slog.Logger
}

// Stack is fleetpack assembled for a test.
type Stack struct {
	Clock Clock
	// FakeClock is Clock when it is the default fake clock, else nil.
	FakeClock *clocktesting.FakeClock
	Cluster   provisioning.Cluster
	// Memory is Cluster when it is the default MemoryCluster, else nil.
	Memory      *provisioning.MemoryCluster
	Catalog     []*offerings.InstanceType
	EC2         *fake.EC2
	Provider    *aws.Provider
	Unavailable *offerings.UnavailableOfferings
	Provisioner *provisioning.Provisioner
	Logger      *slog.Logger
}

// SubnetTag is the tag the fake EC2's subnets carry and the provider selects.
const SubnetTag = "fleetpack-test"

// New builds the stack, failing t on any error.
func New(t testing.TB, opts Options) *Stack {
	t.Helper()
	s := &Stack{Clock: opts.Clock, Logger: opts.Logger}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.Clock == nil {
		s.FakeClock = clocktesting.NewFakeClock(Epoch)
		s.Clock = s.FakeClock
	}
	if opts.ClusterName == "" {
		opts.ClusterName = "fleetpack-test"
	}
	if opts.Capacity == 0 {
		opts.Capacity = 100
	}
	pools, err := provisioning.ParseNodePools([]byte(opts.Pools))
	if err != nil {
		t.Fatalf("stack: NodePools: %v", err)
	}
	s.Catalog, err = offerings.DefaultCatalog(offerings.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.EC2 = fake.NewFromCatalog(s.Catalog, fake.Options{Clock: s.Clock, DefaultCapacity: opts.Capacity},
		map[string]string{"discovery": SubnetTag}, 4000)
	s.Unavailable = offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Clock: s.Clock, Logger: s.Logger})
	s.Provider, err = aws.New(s.EC2, aws.Options{
		ClusterName:     opts.ClusterName,
		Region:          "us-east-1",
		LaunchTemplates: map[string]aws.LaunchTemplate{"amd64": {Name: "fleetpack-test"}, "arm64": {Name: "fleetpack-test"}},
		SubnetSelector:  map[string]string{"discovery": SubnetTag},
		Catalog:         aws.StaticCatalog(s.Catalog),
		Unavailable:     s.Unavailable,
		Clock:           s.Clock,
		Logger:          s.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Cluster = opts.Cluster
	if s.Cluster == nil {
		s.Memory = provisioning.NewMemoryCluster(s.Clock, opts.MemoryCluster)
		s.Cluster = s.Memory
	}
	popts := opts.Provisioner
	if popts.Clock == nil {
		popts.Clock = s.Clock
	}
	if popts.Logger == nil {
		popts.Logger = s.Logger
	}
	s.Provisioner, err = provisioning.New(s.Cluster, s.Provider, pools, popts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
