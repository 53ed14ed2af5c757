// Package fake is an in-memory EC2 that implements the aws package's EC2API
// faithfully enough to trust a test or a simulation of fleetpack against it.
//
// It keeps capacity pools per (capacity type, instance type, zone) with
// finite counts, subnets with free addresses, a Spot price history and
// on-demand prices, account quotas, and the instances it launched with their
// tags and states. CreateFleet (instant fleets) ranks the request's overrides
// the way EC2 documents its allocation strategies — lowest-price,
// capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized
// for Spot; lowest-price and prioritized for on-demand — launches from the
// first pool that can, echoes the chosen override (instance type, zone,
// subnet, lifecycle) in CreateFleetOutput.Instances, and reports every pool it
// tried and could not use in CreateFleetOutput.Errors with EC2's codes
// (InsufficientInstanceCapacity, UnfulfillableCapacity,
// InsufficientFreeAddressesInSubnet, MaxSpotInstanceCountExceeded,
// VcpuLimitExceeded, Unsupported ...), in one response beside the instances
// that did launch. Malformed requests and injected faults come back as
// top-level smithy API errors (*smithy.GenericAPIError) with EC2's codes,
// e.g. RequestLimitExceeded, which the SDK's retryer classifies as a
// throttle exactly as it would the real service's.
//
// Faults are injected, never timed: ThrottleNext, FailNext, DrainPool,
// SetPoolError, SetSpotQuota and SetVCPUQuota, and a Hook called before every
// operation that a test can use to block, add latency on a fake clock, or
// fail. Every call is recorded (Calls, CreateFleetInputs). All methods are
// safe for concurrent use.
//
// Known simplifications: only instant fleets; one reservation per instance;
// instances go pending -> running after StartupDelay on the injected clock
// and shutting-down straight to terminated; Spot prices do not move unless
// SetSpotPrice is called; there are no interruptions (the interruption
// package drives those).
package fake
