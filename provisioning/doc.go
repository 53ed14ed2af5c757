// Package provisioning is the part of fleetpack a custom autoscaler embeds:
// it turns pending pods into running nodes, and empty nodes into money saved.
//
// It sits between the pure solver (scheduling) and the cloud
// (cloudprovider), and talks to the cluster through one small interface:
//
//   - NodePool says what may be launched. It is a Kubernetes-style object
//     (apiVersion fleetpack.dev/v1, kind NodePool) shaped like Karpenter's
//     v1 NodePool: template labels, requirements, taints, startup taints,
//     kubelet maxPods, limits, weight and disruption.consolidateAfter.
//     ParseNodePool(s) decode YAML or JSON strictly; Validate names the
//     field of every problem; Template turns a pool into the solver's
//     scheduling.NodeTemplate (capacity type defaults to on-demand, limits
//     are reduced by what the pool already holds). Its NodeCostSpec
//     (blockDeviceMappings and associatePublicIPAddress, named as on an
//     EC2NodeClass, additionalHourlyCost, burstablePolicy) becomes the
//     template's NodeCosts and Burstable: what the solver bills each node.
//   - Cluster is what fleetpack reads and does: list and watch pods and
//     nodes, create, cordon, annotate and delete nodes, nominate and bind pods, evict
//     through the Eviction API so PodDisruptionBudgets hold (a refusal is an
//     *EvictionBlockedError to retry), delete pods. MemoryCluster implements
//     it in memory for tests, examples and simulation, with PDB evaluation,
//     a virtual kubelet that makes created nodes Ready after a delay on an
//     injected clock, and optional re-creation of controller-owned pods;
//     provisioning/kubecluster implements it with client-go.
//   - Provisioner is the loop. Run watches the cluster, batches pending pods
//     (idle and max windows), solves them over every NodePool with existing
//     and in-flight nodes counted, launches the new claims concurrently
//     through the CloudProvider, registers their nodes and nominates the
//     pods, so the next batch does not buy the same capacity again. Launches
//     refused for lack of capacity are solved again at once against the
//     narrower offerings; a node that cannot be registered has its instance
//     terminated, so nothing leaks; pods that cannot be placed are logged,
//     recorded as events and retried. Nodes it launched that have held no
//     non-daemonset pod for their pool's consolidateAfter are cordoned,
//     terminated and deleted. ProvisionNow skips the batch window for the interruption
//     handler, which needs replacement capacity for a node that is going.
//   - Nodes of deleted NodePools are drained and removed, as Karpenter does
//     when a NodePool is deleted (RemoveOrphanedNodes, run by Run). Only
//     nodes the Provisioner registered itself are touched: it labels them
//     LabelManagedBy=ManagedBy (fleetpack.dev/managed-by=fleetpack), so
//     nodes of a cluster migrating from Karpenter, which carry the same
//     karpenter.sh/nodepool label, are left alone. The same mark gates
//     empty-node removal. Nodes launched before the mark existed lack it:
//     `kubectl label node NAME fleetpack.dev/managed-by=fleetpack` puts them
//     back under fleetpack's care. A pool must stay missing
//     from SetNodePools for OrphanGracePeriod first, so a pool briefly
//     missing during a reload drains nothing; then at most
//     MaxOrphanDisruptions nodes at a time are cordoned, get replacement
//     capacity through ProvisionNow, are drained through the Eviction API
//     once it is Ready (PodDisruptionBudgets hold; refused evictions are
//     retried), and have their instance terminated and node deleted. The
//     drain itself is package provisioning/drain, a pure step function the
//     interruption handler uses too; ApplyDrainStep carries a step out on a
//     Cluster.
//   - Consolidation (Options.Consolidation.Enabled; Consolidate, run by Run)
//     removes and replaces nodes to cut the bill: the pure decisions of
//     package disruption (empty, drift, expiration, multi- and single-node
//     moves under policies and budgets) over ConsolidationInput, applied
//     one move at a time: validated again after ValidationDelay (15s) on
//     the injected clock, candidates tainted TaintKeyDisrupted:NoSchedule,
//     replacements launched and Ready, then the one drain (package drain,
//     through the Eviction API) and termination; a replacement that fails
//     untaints the candidates. It then removes empty nodes in place of
//     RemoveEmptyNodes. Nothing is disrupted while pods need capacity.
//     The cluster must implement NodeTainter (MemoryCluster and kubecluster
//     do); a PDBLister lets decisions skip nodes whose budgets are spent.
//     NodePool documents may be Karpenter's karpenter.sh/v1 as they are
//     (consolidationPolicy, consolidateAfter, budgets, expireAfter;
//     nodeClassRef read and reported by Ignored).
//   - Instances no node stands for are terminated
//     (TerminateLeakedInstances, run by Run): one whose launch returned
//     but whose process died before registering its node, or whose failed
//     registration's clean-up failed too. An instance the cloud lists with
//     no Node of its provider ID is terminated once it has had
//     LeakedInstanceGracePeriod (2 min) since its launch to register; the
//     cloud is listed at most every 30 s, and a new leader's first pass
//     finds what its predecessor left.
//   - SolverInput is the one way from a cluster's state (nodes, pods,
//     daemonsets) to the solver's input: pending pods, existing nodes with
//     their bound, nominated and reserved pods (startup taints hidden,
//     leaving nodes left out), one pod per daemonset as its controller
//     would create it, one template per NodePool. The Provisioner's passes,
//     the custom autoscaler's dry run and the plan tool all build their
//     input with it, so a what-if plan is the plan a pass would make.
//   - Metrics holds the Prometheus metrics, registered on a Registerer the
//     caller passes in.
//
// Everything that waits uses an injected k8s.io/utils/clock, so tests drive
// time with a fake clock.
package provisioning
