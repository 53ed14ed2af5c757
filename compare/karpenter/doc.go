// Command karpenter solves the same scheduling problems with Karpenter's
// provisioning scheduler and with fleetpack's scheduling.Solve, in one run,
// and prints one line per workload:
//
//	workload=NAME karpenter_bill=X fleetpack_bill=Y bill_ratio=Y/X karpenter_nodes=N fleetpack_nodes=M speed_ratio=Tk/Tf single_type_bill=Z
//
// Run it from this directory (it is a module of its own, so that the
// fleetpack library never depends on Karpenter):
//
//	cd compare/karpenter && go run . -v      # the table of docs/benchmarks.md: 1,000 and 5,000 pods, 5 solves each
//	cd compare/karpenter && go test ./...    # what CI runs: the 1,000-pod workloads, once
//
// Its go.mod asks for go 1.26.9, as Karpenter v1.15.0 does; run it with
// GOTOOLCHAIN=go1.27.3 (the go command fetches that toolchain from the
// module proxy) when the installed Go is older.
//
// # What is compared
//
// Both schedulers get exactly the same pods, daemonset pods, instance types
// and NodePool requirements. Karpenter's instance types are converted from
// fleetpack's (karpenterInstanceType): the same capacity and allocatable,
// every label as a requirement, every offering with its zone, capacity type,
// price and availability. Karpenter runs as its provisioner does: a
// NodePool, the fake cloud provider, state.NewCluster over a
// controller-runtime fake client, then NewTopology, NewScheduler and Solve,
// with one worker (NumConcurrentReconciles(1)), its fastest setting on two
// cores.
//
// The workloads (Workloads) are karpentermix-1000 and -5000 (the 400-type
// workload of Karpenter's own scheduling benchmark, as
// BenchmarkSchedulingKarpenterMix solves it), mixed-1000 and -5000
// (BenchmarkScheduling's mix on the embedded us-east-1 catalog, Spot and
// on-demand), mixed-cmr-1000 and -5000 (the same, restricted to categories
// c, m and r of generation above 2) and microservices (an 11-service shop,
// 40 replicas each, on-demand only); each again with a typical EKS
// daemonset set (workload.DaemonSets), suffixed "+ds".
//
// # How it is measured
//
// Bills are in $/h: each node at the cheapest available offering of its
// remaining instance types that its requirements and the NodePool allow,
// priced with offerings.NodeBill: the offering's price, the default
// per-node costs (a 20 GiB gp3 root volume), and surplus credits for
// requested cpu above a burstable type's baseline (unlimited mode). Every
// plan is validated first (Plan.Validate): each pod placed once or reported
// unschedulable, each node's billed type holding its pods and daemonsets,
// hostname anti-affinity kept, and both schedulers reporting the same
// number of unschedulable pods; a run with an invalid plan fails.
//
// Times are per solve: what each side can reuse between passes is built
// once outside the timing: for Karpenter its cloudprovider.InstanceType
// objects (requirements compiled) and NodePool, for fleetpack its Input
// and a scheduling.Catalog of the same instance types. Each timed solve
// then does everything that depends on the pods, NodePool and daemonsets:
// Karpenter's NewTopology, NewScheduler (which its provisioner runs on
// every pass) and Solve, fleetpack's whole Solve (type filtering,
// daemonset overhead, dual prices and packing). The two sides alternate, -reps times each, and medians are
// reported (bills: the median plan; Karpenter's plans vary from run to
// run, -v prints their range). single_type_bill is
// scheduling.BestSingleTypeFleet's bill, n/a where topology constraints
// keep that bound from applying.
package main
