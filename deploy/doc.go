// Package deploy holds what a cluster needs to run fleetpack: rbac.yaml, the
// least-privilege RBAC (a Namespace, a ServiceAccount, the ClusterRole and
// the leader-election Role with their bindings), embedded as RBAC and
// decoded by RBACObjects, and Apply (ApplyRBAC for RBAC), which creates or updates such objects
// (tests and installers use it; `kubectl apply -f deploy/rbac.yaml` does the
// same).
package deploy
