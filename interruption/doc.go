// Package interruption keeps the cluster whole when EC2 takes capacity back.
// It handles the notices AWS sends before an instance goes: Spot interruption
// warnings (two minutes' notice), rebalance recommendations (elevated risk,
// often earlier), capacity-reservation interruption warnings, AWS Health
// scheduled changes for EC2 instances, and instance state changes (stopping,
// stopped, shutting-down, terminated). Karpenter ignores rebalance
// recommendations; fleetpack acts on them natively.
//
// The package has three parts:
//
//   - Messages. Parse turns an EventBridge event, exactly as delivered in an
//     SQS message body, into a typed Message (kind, instance ids, event time,
//     deadline). ParseIMDSSpotAction, ParseIMDSRebalance and
//     ParseIMDSMaintenance do the same for instance-metadata bodies. Bodies
//     that cannot be acted on give a *ParseError naming the event id and the
//     field, wrapping ErrMalformed or ErrUnsupported.
//
//   - Sources, behind the Source interface: SQSSource long-polls a queue
//     (10 messages per receive, a bounded pool of workers, batch deletes,
//     unparseable messages deleted, refused ones left to reappear after
//     their visibility timeout); IMDSSource polls the IMDSv2 paths on the
//     instance it runs on for clusters without a queue; ChannelSource lets a
//     simulator push messages. Tests can also call Handler.Handle directly.
//     The fakesqs subpackage is an in-memory SQS queue for tests.
//
//   - Handler, the Sink every source feeds. Handle does the urgent part at
//     once (records the notice on the node, marks an interrupted Spot pool
//     unavailable in offerings.UnavailableOfferings, cordons the node) and
//     queues the rest, which Run's bounded workers carry out: launch
//     replacement capacity through a Replacer (ProvisionerReplacer wraps the
//     provisioner), drain the node through the Eviction API so
//     PodDisruptionBudgets hold (daemonset and mirror pods stay), finish before the notice's deadline — deleting a
//     pod its budget still holds once only its termination grace period is
//     left — and delete the node and its instance. A rebalance recommendation
//     replaces first, waits for the replacement to be Ready, then drains, and
//     never touches more than RebalanceMaxShare of a NodePool at once. The
//     same notice twice (same instance and kind) acts once, so at-least-once
//     delivery is safe.
//
//   - Restarts. The state of the work lives in the cluster, not in memory:
//     the node annotation AnnotationRecord holds, as JSON, the kind and
//     deadline of the most urgent notice accepted for the node and whether
//     (and on which nodes) replacement capacity was launched. A source may
//     delete a notice once Handle accepted it: if the process stops before
//     the work is done, the next handler's Run finds the records and
//     finishes the work with the recorded deadlines (a deadline already
//     past drains at once; a rebalance still replaces first and waits for
//     the recorded replacement rather than launching another). The same
//     notice redelivered after a restart still acts once. The record goes
//     with the node, and is removed when a rebalance gives up and keeps its
//     node; a record that cannot be read is logged, counted in
//     Metrics.MalformedRecords and left alone. Run one handler per cluster.
//
// Layering: interruption imports provisioning (the Cluster interface and the
// provisioner), cloudprovider and offerings; nothing in fleetpack imports it
// except examples. Time comes from an injected clock, so every wait and
// deadline can be driven by a fake clock in tests; metrics go to the
// prometheus.Registerer the caller passes to NewMetrics.
package interruption
