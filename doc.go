// Package fleetpack is the root of a Go library that provisions Kubernetes
// nodes the way Karpenter does: it packs pending pods into node claims
// (scheduling), prices and tracks EC2 capacity (offerings), launches through
// CreateFleet (cloudprovider), runs the provisioning loop (provisioning) and
// answers Spot interruptions (interruption). This package holds only the
// module-wide benchmarks; import the subpackages.
package fleetpack
