// Package disruption decides which nodes to remove or replace to cut the
// bill: fleetpack's consolidation, drift and expiration, shaped like
// Karpenter's disruption controller but decided in one pure call.
//
// Decide takes a snapshot (nodes with their pods and prices, daemonsets,
// node templates, NodePool disruption settings, PodDisruptionBudgets and the
// time) and returns Commands: which nodes go, which node claims replace
// them, which pods move, and what that saves. It does no I/O and reads no
// clock; provisioning's consolidation controller applies the commands
// (validate after a delay, launch replacements, taint, drain, delete).
//
// # Methods
//
// Tried in order on every pass: empty nodes; drift (the NodePool no longer
// admits the node, or its template changed); expiration (expireAfter);
// multi-node consolidation (m nodes replaced by n < m, n = 0 a delete,
// found by binary search over the candidates cheapest to disrupt first);
// single-node consolidation (delete, or replace with one cheaper node). A
// pass returns every empty-node removal its budgets allow and at most one
// command that moves pods, so one simulation never counts capacity another
// has already promised.
//
// # Simulations
//
// Every move is checked by placing the candidates' pods with the real
// solver on the other nodes plus at most the replacements. The snapshot is
// compiled once per pass into a scheduling.Context, so each simulation
// costs about what placing the candidates' pods costs; cheap bounds (can
// anything cheaper hold these pods? is there room elsewhere?) skip the
// simulations that cannot succeed.
//
// # The decision rule
//
// A move must save at least the pool's MinSaving per hour. Policy
// WhenEmpty only removes empty nodes; WhenEmptyOrUnderutilized takes any
// such saving; Balanced also asks that the move's share of the pool's bill
// saved, divided by its share of the pool's disruption cost, be at least
// 1/K. A node's disruption cost counts its pods: each counts 1, adjusted by
// controller.kubernetes.io/pod-deletion-cost and priority. A Spot node is
// replaced by Spot only when at least SpotToSpotMinTypes cheaper types
// could serve, so the replacement is not the next to be interrupted; an
// on-demand node goes back to Spot whenever that saves.
//
// # Stabilization
//
// A node a move launched or sent pods to (Command.Destinations and the
// replacements, which the executor records as Node.DisruptedInto) is not
// consolidated for the pool's Stabilization (an hour by default) unless it
// is empty: the pods a move placed are not moved again, and no node
// ping-pongs between moves under churn. Drift and expiration are not held.
//
// # Budgets
//
// Each pool's Budgets cap how many of its nodes may be disrupting at once,
// as a count or a percentage of its nodes, optionally for some reasons only
// (Empty, Drifted, Underutilized) and optionally only inside a cron
// schedule's window. Without budgets a pool allows 10%. Budgets do not
// govern interruption notices, which the interruption package handles.
package disruption
