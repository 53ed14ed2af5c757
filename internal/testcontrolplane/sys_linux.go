package testcontrolplane

import "syscall"

// setParentDeathSignal kills a component when the test binary dies without
// stopping it (go test's timeout kills the binary), so no etcd or
// kube-apiserver outlives its test.
func setParentDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
