// Package scheduling is fleetpack's bin-packing solver. Given pending pods,
// existing nodes, daemonsets and node templates, Solve decides which pods go
// on existing nodes and which new nodes ("node claims") to create, each with a
// diversified, cheapest-first list of every instance type that fits.
//
// The solver is pure: it does no I/O, reads no clock and keeps no state
// between calls, so the same input always gives the same plan. The cloud and
// the cluster sit above it, in cloudprovider and provisioning; they turn
// NodePools into NodeTemplates and launch the NodeClaims.
//
// # How it packs
//
// Pods are sorted largest first, size being cpu and memory valued at the
// dual prices of the "cover the workload at least cost" linear program,
// solved over the types that hold the median pod (value.go), names breaking
// ties.
//
// Where the pods carry no node requirements, topology or host ports (and the
// highest-weight templates no limits), they go to existing nodes first, each
// to the first it fits, and the node-by-node fill packs the rest
// (fill.go): each node is filled from the pods left, largest first, on the
// type whose filled node holds the most value per dollar, and the fill runs
// again preferring each of the four densest types for every node it fills
// nearly full. On workloads of at most 500 pods the greedy below runs too,
// and the cheaper claims win. Part-full claims that one cheaper node holds
// are merged, pairs of claims are re-filled where that bills less, a claim
// whose pods fit in the room the others leave is emptied into them, and,
// where no existing node is in play, no plan bills more than
// BestSingleTypeFleet: the best single-type fleet packed
// first-fit-decreasing, compared as it would launch, each part-full node at
// the cheapest type that holds it (fleet.go).
//
// Otherwise the greedy places each pod, in order of preference, on the first
// existing node it fits; else on the first open claim that accepts it; else
// on a new claim from the highest-weight template that can hold it. A claim
// accepts a pod when some instance type still holds everything (pods plus
// the daemonsets that would run on that type) and growing into it costs no
// more than a node of the pod's own, counting the spare room each leaves at
// its dual value, capped by the demand still to come and by the room's free
// pod slots (join.go).
//
// # The bill
//
// Prices are bills (offerings.NodeBill): each offering's price plus the
// template's NodeCosts, with burstable types used as its BurstablePolicy
// says: under Baseline (the default) a t3/t3a/t4g/t2 type offers pods only
// the cpu it sustains, under Credits its surplus credits are priced as if
// its whole cpu were requested while packing and at the claim's real
// requests when the list is made, under Exclude it is left out (cost.go);
// the fill, whose nodes are priced as they are filled, leaves Credits
// templates to the greedy. A claim lists only types billed within
// ClaimPriceTolerance (10%) of its own bill, since EC2 may launch any of
// them.
//
// # Constraints
//
// Requests (init containers, sidecars and pod overhead through the
// Kubernetes helpers), extended resources such as GPUs, max-pods, host
// ports, nodeSelector, required node affinity (terms tried in turn), taints
// and tolerations, template limits and weights, topology spread and pod
// (anti-)affinity on any node label (topology.go). Preferences — preferred
// pod affinity, preferred anti-affinity, preferred node affinity,
// ScheduleAnyway spread, PreferNoSchedule taints — are honoured as if
// required and relaxed one at a time, in that order, only for a pod that
// cannot be placed with them. A pod that cannot be placed at all is
// returned in Plan.Unschedulable with a reason naming what stood in the way.
//
// # Why it is fast
//
// Pods with identical node constraints share a class whose compatibility
// with each template is worked out once; each claim keeps its candidate
// types cheapest first and scans only their Pareto front; zones and capacity
// types are bitmasks; runs of identical pods resume where the last one went,
// even with other workloads' pods in between, and a claim remembers the last
// pod its join rule refused; topology-bound pods start where the last pod
// bound for the same domain went, and one-per-node pods look only at claims
// still free for them. The fill counts pods by shape (runs of identical
// requests), so a node costs a few fills over the shapes, tried densest type
// first and stopped at the first type that cannot beat the best so far;
// workloads of more than 512 shapes are left to the greedy. Compiling the
// instance types (capacity and allocatable as vectors, offerings by zone
// number) is a large share of a 1,000-pod solve over the real catalog
// (docs/benchmarks.md); a caller that solves repeatedly
// over the same types compiles them once with NewCatalog and passes
// Input.Catalog (catalog.go), and the plan is the same either way.
// docs/benchmarks.md has the figures.
//
// # Templates
//
// A NodeTemplate is folded in one place: NodeRequirements joins its
// requirements, labels and NodePool name, and AdmittedTypes is the rule for
// which instance types it may launch (templates.go). provisioning builds
// templates from NodePools with them, and the solver applies the same rule
// to whatever types a template lists.
//
// # How it is built
//
// fill.go packs unconstrained pods node by node. solve.go places pods
// greedily: for each attempt (a variant of the pod at a
// relaxation level) it tries existing nodes, then offers the pod to open
// claims in some order, then to a new claim. Deciding and committing are
// apart: offer and newClaimOffer evaluate a claim and write only memos; add
// and addToNode commit. The solver asks topology.go through a per-attempt
// query (which nodes and claims the pod's spread and affinity allow, and
// which domains a claim may narrow to) and tells it what was placed.
package scheduling
