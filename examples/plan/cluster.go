package main

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/pager"
)

// addCluster adds the live cluster's pods, nodes and daemonsets, read with
// the kubeconfig at path, to the scenario read from files. The files may
// add pending workloads and daemonsets but not nodes: a file's Node next
// to the cluster's would be a node that does not exist.
func addCluster(ctx context.Context, sc *scenario, path string) error {
	if len(sc.nodes) > 0 {
		return fmt.Errorf("-kubeconfig: the nodes come from the cluster; the input files define Node %q", sc.nodes[0].Name)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("-kubeconfig %s: %w", path, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("-kubeconfig %s: %w", path, err)
	}
	return readCluster(ctx, client, sc)
}

// readCluster lists the cluster's nodes, pods and daemonsets into sc; a pod
// of the cluster with the name of one from the files is an error.
func readCluster(ctx context.Context, client kubernetes.Interface, sc *scenario) error {
	fromFiles := map[string]bool{}
	for _, p := range sc.pending {
		fromFiles[p.Namespace+"/"+p.Name] = true
	}
	list := func(what string, fn pager.ListPageFunc, each func(runtime.Object) error) error {
		err := pager.New(fn).EachListItem(ctx, metav1.ListOptions{}, each)
		if err != nil {
			return fmt.Errorf("-kubeconfig: listing %s: %w", what, err)
		}
		return nil
	}
	err := list("nodes", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Nodes().List(ctx, o)
	}, func(obj runtime.Object) error {
		sc.nodes = append(sc.nodes, obj.(*corev1.Node))
		return nil
	})
	if err != nil {
		return err
	}
	held := len(sc.pending) + countBound(sc)
	err = list("pods", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
	}, func(obj runtime.Object) error {
		pod := obj.(*corev1.Pod)
		// The same bound as the files: listing stops at the pod past it
		// rather than holding a cluster of any size in memory.
		if held++; held > maxPlanPods {
			return fmt.Errorf("the cluster and the input files hold more than %d pods, the most one plan takes", maxPlanPods)
		}
		if key := pod.Namespace + "/" + pod.Name; fromFiles[key] {
			return fmt.Errorf("pod %s is in the cluster and in the input files", key)
		}
		if pod.Spec.NodeName != "" {
			sc.bound[pod.Spec.NodeName] = append(sc.bound[pod.Spec.NodeName], pod)
		} else {
			sc.pending = append(sc.pending, pod)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return list("daemonsets", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return client.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, o)
	}, func(obj runtime.Object) error {
		sc.daemonSets = append(sc.daemonSets, obj.(*appsv1.DaemonSet))
		return nil
	})
}

// countBound is how many pods sc holds on nodes.
func countBound(sc *scenario) int {
	n := 0
	for _, pods := range sc.bound {
		n += len(pods)
	}
	return n
}
