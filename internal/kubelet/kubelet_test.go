package kubelet

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/fleetpack/fleetpack/internal/fixture"
	"github.com/fleetpack/fleetpack/internal/testcontrolplane"
	"github.com/fleetpack/fleetpack/provisioning"
)

var controlPlane = testcontrolplane.Shared{Options: testcontrolplane.Options{WithoutScheduler: true}}

func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }

// TestControlPlaneSimulatorActsForSelectedNodesOnly: a selected node turns
// Ready, its pod Running and Ready, and a deleted pod is gone at once; an
// unselected node and its pod are left as they are.
func TestControlPlaneSimulatorActsForSelectedNodesOnly(t *testing.T) {
	cp := controlPlane.Get(t)
	client := cp.Client(t)
	ctx := t.Context()
	ns := cp.Namespace(t)
	sim, err := New(client, Options{Nodes: labels.SelectorFromSet(labels.Set{"simulated": ns})})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sim.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	mine, other := ns+"-mine", ns+"-other"
	for _, n := range []*corev1.Node{
		fixture.Node(mine, fixture.NodeLabels(map[string]string{"simulated": ns})),
		fixture.Node(other),
	} {
		if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := n.Name
		t.Cleanup(func() { _ = client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	for _, p := range []*corev1.Pod{fixture.Pod(ns, "mine", fixture.BoundTo(mine)), fixture.Pod(ns, "other", fixture.BoundTo(other))} {
		if _, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	poll := func(what string, cond func() (bool, error)) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return cond() }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll("the selected node Ready", func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, mine, metav1.GetOptions{})
		return err == nil && provisioning.IsNodeReady(n), err
	})
	poll("its pod Running and Ready", func() (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "mine", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && podReady(p), err
	})
	// The deletion goes through with its grace period: the simulated
	// kubelet confirms it.
	if err := client.CoreV1().Pods(ns).Delete(ctx, "mine", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the deleted pod gone", func() (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "mine", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	// By now the simulator has seen the other node and pod (they were
	// created before the selected ones' work finished) and left them.
	n, err := client.CoreV1().Nodes().Get(ctx, other, metav1.GetOptions{})
	if err != nil || provisioning.IsNodeReady(n) {
		t.Errorf("unselected node: ready=%v, %v", err == nil && provisioning.IsNodeReady(n), err)
	}
	p, err := client.CoreV1().Pods(ns).Get(ctx, "other", metav1.GetOptions{})
	if err != nil || p.Status.Phase != corev1.PodPending {
		t.Errorf("pod on the unselected node: %v, %v", p.Status.Phase, err)
	}
}
