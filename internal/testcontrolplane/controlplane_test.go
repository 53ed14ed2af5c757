package testcontrolplane

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var controlPlane Shared

func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }

func TestControlPlaneServesAdminKubeconfigAndServiceAccounts(t *testing.T) {
	cp := controlPlane.Get(t)
	ctx := t.Context()
	ns := cp.Namespace(t)

	// The kubeconfig file reaches the same server as an administrator.
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("admin creating a pod: %v", err)
	}
	// The API server validates, as the fake clientset does not.
	bad := pod.DeepCopy()
	bad.Name = "Not_A_Name"
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("creating a pod with an invalid name: %v, want Invalid", err)
	}

	// A ServiceAccount is authenticated, and RBAC grants it nothing.
	sa, err := kubernetes.NewForConfig(cp.ServiceAccountConfig(t, ns, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "system:serviceaccount:"+ns+":nobody") {
		t.Fatalf("ServiceAccount listing pods: %v, want Forbidden naming the ServiceAccount", err)
	}
}
