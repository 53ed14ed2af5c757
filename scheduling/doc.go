// Package scheduling is fleetpack's bin-packing solver. Given pending pods,
// existing nodes, daemonsets and node templates, Solve decides which pods go
// on existing nodes and which new nodes ("node claims") to create, each with a
// diversified, cheapest-first list of every instance type that fits.
//
// The solver is pure: it does no I/O, reads no clock and keeps no state
// between calls, so the same input always gives the same plan. The cloud and
// the cluster sit above it, in cloudprovider and provisioning.
package scheduling
