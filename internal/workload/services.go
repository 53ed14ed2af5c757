package workload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A Service is one Deployment of a microservices workload: its name and the
// requests of each replica.
type Service struct {
	Name        string
	CPUMilli    int64
	MemoryBytes int64
}

// MicroservicesReplicas is the replica count of the comparison's
// microservices workload.
const MicroservicesReplicas = 40

// MicroservicesServices are the eleven services of a common microservices
// demo shop (its twelfth, the load generator, is not part of the shop),
// with the small requests such services declare: 50m to 300m cpu, 64Mi to
// 256Mi memory.
func MicroservicesServices() []Service {
	const mi = 1 << 20
	return []Service{
		{"frontend", 100, 64 * mi}, {"cart", 200, 64 * mi}, {"catalog", 100, 64 * mi}, {"currency", 100, 64 * mi},
		{"payment", 50, 64 * mi}, {"shipping", 100, 64 * mi}, {"email", 100, 64 * mi}, {"checkout", 100, 64 * mi},
		{"recommendation", 100, 220 * mi}, {"ads", 200, 180 * mi}, {"redis-cart", 70, 200 * mi},
	}
}

// Microservices returns replicas pods of every service of
// MicroservicesServices, labelled app=<service>: 440 pods at
// MicroservicesReplicas.
func Microservices(replicas int) []*corev1.Pod {
	services := MicroservicesServices()
	pods := make([]*corev1.Pod, 0, len(services)*replicas)
	for _, s := range services {
		for r := range replicas {
			pods = append(pods, pod(fmt.Sprintf("%s-%02d", s.Name, r), s.Name, s.CPUMilli, s.MemoryBytes))
		}
	}
	return pods
}

// DaemonSets returns one pod per daemonset of a typical EKS node: the VPC
// CNI (25m, 40Mi), kube-proxy (100m, 50Mi), the EBS CSI node driver (30m,
// 120Mi), a log agent (100m, 200Mi) and a node exporter (50m, 64Mi). Each
// tolerates every taint, as such daemonsets do, so it runs on every node.
func DaemonSets() []*corev1.Pod {
	const mi = 1 << 20
	sets := []Service{
		{"aws-node", 25, 40 * mi},
		{"kube-proxy", 100, 50 * mi},
		{"ebs-csi-node", 30, 120 * mi},
		{"log-agent", 100, 200 * mi},
		{"node-exporter", 50, 64 * mi},
	}
	pods := make([]*corev1.Pod, len(sets))
	for i, s := range sets {
		p := pod(s.Name, s.Name, s.CPUMilli, s.MemoryBytes)
		p.Namespace = metav1.NamespaceSystem
		p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		pods[i] = p
	}
	return pods
}
