// Package e2e holds fleetpack's end-to-end tests on a real control plane
// (internal/testcontrolplane): the Provisioner, the interruption handler and
// the fake EC2 run against kube-apiserver, with the real ReplicaSet,
// disruption and node lifecycle controllers and kube-scheduler, and
// simulated kubelets (internal/kubelet). It has no code of its own.
package e2e
