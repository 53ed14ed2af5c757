// Package workload builds the synthetic scheduling problems that fleetpack's
// benchmarks (bench_test.go) and the side-by-side comparison with Karpenter
// (compare/karpenter) solve: seeded pod mixes, the 400-type catalog of
// Karpenter's own scheduling benchmark, a microservices workload, and a
// typical EKS daemonset set. Every generator is deterministic for a given
// seed, so two programs that call it solve exactly the same problem.
//
// It is internal: the shapes are benchmark fixtures, not a public API.
package workload
