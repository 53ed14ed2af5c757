// Package testcontrolplane runs a real Kubernetes control plane for tests:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built
// from the Go module proxy on first use and started on free loopback ports.
//
// The fakes (MemoryCluster, client-go's fake clientset) enforce no
// validation, no PodDisruptionBudgets, no binding races and no RBAC; tests
// that need those start a ControlPlane. Such tests are named
// TestControlPlane..., so `go test -run ControlPlane ./...` runs exactly them.
//
// Building: the binaries are built once into a cache directory shared by
// every run and every test package (os.UserCacheDir()/fleetpack/
// controlplane-<versions>, or $FLEETPACK_CONTROLPLANE_CACHE), under a file
// lock so that test packages running in parallel build once. kube-apiserver
// and its peers come from a throwaway module generated in that directory
// (k8s.io/kubernetes cannot be `go install`ed because of its replace
// directives); etcd from a second one with a main that calls etcdmain.Main.
// Nothing of this touches fleetpack's own go.mod.
//
// Skipping: Start skips the test under `go test -short`, and when the
// binaries cannot be built (no module proxy, no go command). With
// FLEETPACK_REQUIRE_CONTROLPLANE=1 (CI sets it) "cannot be built" fails the
// test instead, so CI never passes by skipping.
//
// Sharing: starting a control plane takes seconds; a test package shares one
// through a package-level Shared whose Main runs from TestMain, and isolates
// its tests by namespace and object names.
package testcontrolplane
