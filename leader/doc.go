// Package leader runs the parts of fleetpack that act on the cluster and the
// cloud in one replica at a time, so that two replicas of an autoscaler can
// run for availability without launching twice or draining twice.
//
// Run campaigns for a coordination.k8s.io Lease with client-go's
// tools/leaderelection and, while this process holds the Lease, runs the
// function it is given: typically provisioning.Provisioner.Run,
// interruption.Handler.Run and the notice sources (SQS, IMDS). A follower
// runs none of them, so its sources do not receive or delete messages; its
// informers may stay warm. When the leader dies, the Lease expires and a
// follower takes over within LeaseDuration + 4.4 x RetryPeriod (see the
// defaults); the work
// the old leader left half done is in the cluster, not in its memory
// (pods' status.nominatedNodeName, nodes' interruption records), so the new
// leader finishes it without launching again.
//
// It imports only client-go and sits beside the fleetpack packages rather
// than in a layer: the program that wires fleetpack together (see
// examples/custom-autoscaler) calls Run around the components. The RBAC the
// Lease needs is in deploy/rbac.yaml (Role fleetpack-leader-election).
//
// Leader election keeps real time inside client-go; Run's own decisions (when
// to stop, when to release) are ordered by the lead function's return, not
// by time.
package leader
