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
//   - Handler, the Sink every source feeds. Its policy is data: a playbook
//     per notice kind says whether the pool is marked unavailable, when the
//     node is cordoned, whether replacement capacity is launched and waited
//     for, how the node is drained and when the work begins. Handle decides
//     with a pure function (decide) over the playbook, the node, its record
//     and the handler's memory of it, and does the urgent part at once
//     (records the notice on the node, marks an interrupted Spot pool
//     unavailable in offerings.UnavailableOfferings, cordons). The rest is
//     stepped: each round of a Step lists the cluster once, plans every node's next
//     move (launch the replacement through a Replacer — ProvisionerReplacer
//     wraps the provisioner —, wait for it to be Ready, one step of the
//     drain of package provisioning/drain, delete the node and its
//     instance) and applies the moves with at most Workers nodes at once;
//     Run calls Step whenever a notice, a cluster change or the next wake
//     time comes, and a simulator may call Step itself after each step of
//     its virtual clock. Nothing sleeps.
//
//     Spot and capacity-reservation warnings: the node is cordoned and the
//     replacement launched at once; evictions (through the Eviction API,
//     so PodDisruptionBudgets hold; daemonset and mirror pods stay) begin
//     when the replacement is Ready, or at deadline − DeadlineMargin −
//     the longest terminationGracePeriodSeconds among the node's pods −
//     DeadlineMargin, whichever comes first; a pod its budget still holds
//     when only its grace period is left before deadline − DeadlineMargin
//     is deleted. Scheduled changes do the same, beginning
//     ScheduledChangeLead before the change starts, so the node serves
//     until then. Rebalance recommendations replace, wait for Ready, then
//     cordon and drain within RebalanceDrainTimeout, never touching more
//     than RebalanceMaxShare of a NodePool at once; they give up (node kept,
//     cordoned) when the replacement fails or is not Ready within
//     ReplacementReadyTimeout. Pods without a controller get no
//     replacement capacity (they are not re-created once evicted): the log
//     and a PodsWillBeLost event on the node say so. Metrics.
//     PodUnavailability measures, per evicted pod, the time until a pod of
//     its controller created since runs and is Ready. A failed node
//     deletion is retried with backoff. The same notice twice (same
//     instance and kind) acts once, so at-least-once delivery is safe; the
//     handler keeps one entry per node, forgotten DedupeTTL after its work
//     ended (at most 4096 finished entries).
//
//   - Restarts. The state of the work lives in the cluster, not in memory:
//     the node annotation AnnotationRecord holds, as JSON, the kind and
//     deadline of the most urgent notice accepted for the node, when a
//     replacement launch began (written before the launch) and what it
//     launched. A source may delete a notice once Handle accepted it: if
//     the process stops before the work is done, the next handler's first
//     Step finds the records and finishes the work with the recorded
//     deadlines (a deadline already past drains at once; a replacement
//     recorded is waited for rather than launched again, and a launch that
//     began without a recorded result waits for the nodes registered since
//     instead of launching twice). The same notice redelivered after a
//     restart still acts once. The record goes with the node, and is
//     removed when a rebalance gives up and keeps its node; a record that
//     cannot be read is logged, counted in Metrics.MalformedRecords and
//     left alone. Run one handler per cluster.
//
// Layering: interruption imports provisioning (the Cluster interface and the
// provisioner), cloudprovider and offerings; nothing in fleetpack imports it
// except examples. Time comes from an injected clock, so every wait and
// deadline can be driven by a fake clock in tests; metrics go to the
// prometheus.Registerer the caller passes to NewMetrics.
package interruption
