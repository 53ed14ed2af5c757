// Package drain is fleetpack's one drain: a pure step function that, given
// a node's pods, the answers the Eviction API gave so far and the time, says
// which pods to evict, which to delete, when to look again and whether the
// node is drained. It does no I/O and reads no clock, so every caller (the
// interruption handler, orphan removal in provisioning, consolidation) gets
// the same rules and tests it by stepping time.
//
// A caller keeps one *Drain per node and loops:
//
//	d := drain.New(now, drain.Options{Deadline: end, Force: true})
//	for {
//		step := d.Next(now, podsOfTheNode)
//		if step.Done || step.Expired { break } // delete the node, or give up
//		// evict step.Evict through the Eviction API, delete step.Delete,
//		// then tell the drain what happened:
//		d.Record(now, results)
//		// wait until step.Wake (or a cluster change), then list again
//	}
//
// provisioning.ApplyDrainStep does the evict/delete/Record part against a
// provisioning.Cluster, so the classification of the API's answers lives in
// one place too, and provisioning.TerminateNode ends a drained node
// (instance, then node object).
//
// The callers, by the options they pass:
//   - The interruption handler, for a notice with a deadline: Deadline (the
//     notice's, less a margin), Force, AwaitStart until the replacement is
//     Ready, EvictFrom at the latest point evictions can still go through
//     the budgets; for a rebalance: a Deadline that only bounds the drain.
//   - Orphan removal (provisioning.RemoveOrphanedNodes): AwaitStart until
//     the replacement is Ready, no Deadline, a fixed retry of refusals.
//   - Consolidation: like orphan removal — launch or find the capacity,
//     New with AwaitStart, Start once ReplacementsReady holds, step until
//     Done, then TerminateNode; a Deadline without Force if a disruption
//     must give up after a while.
//
// The rules:
//   - Only pods that MovesOnDrain are moved: daemonset pods, mirror pods and
//     finished pods stay with the node.
//   - Pods already terminating (deletionTimestamp set) are waited for, not
//     evicted again.
//   - A refused eviction (a PodDisruptionBudget allows no disruption now) is
//     retried with exponential backoff, from Options.InitialBackoff up to
//     Options.MaxBackoff; a round without refusals resets it.
//   - With a Deadline and Force, a pod still on the node once only its
//     termination grace period is left before the deadline is deleted
//     without its budget's consent, so it can still shut down gracefully
//     before the node goes. Without Force the deadline only ends the drain
//     (Expired), leaving the pods where they are.
//   - With Options.AwaitStart nothing is evicted until Start is called or
//     Options.EvictFrom passes: a caller that launches replacement capacity
//     first calls Start once it is Ready (see ReplacementsReady) and sets
//     EvictFrom to the latest time it may wait for it.
//
// Layering: drain imports only the Kubernetes API types; provisioning
// imports it.
package drain
