package scheduling

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
)

// ResourceNodes is the pseudo-resource a NodeTemplate's Limits use to cap the
// number of nodes.
const ResourceNodes corev1.ResourceName = "nodes"

// DefaultMaxInstanceTypes is how many instance types a NodeClaim keeps, like
// Karpenter: enough for EC2 to find capacity, few enough for one CreateFleet.
const DefaultMaxInstanceTypes = 60

// NodeTemplate is what the solver may create: a NodePool reduced to plain
// values. The provisioning package builds it from a NodePool.
type NodeTemplate struct {
	// NodePool is the name of the NodePool this template comes from.
	NodePool string
	// Weight orders templates: higher weight is tried first.
	Weight int32
	// Requirements constrain the labels of nodes made from this template,
	// including well-known ones such as zone, capacity type and arch.
	Requirements Requirements
	// Labels are set on every node made from this template.
	Labels map[string]string
	// Taints are set on every node; pods must tolerate them.
	Taints []corev1.Taint
	// StartupTaints are set at launch and removed by an agent later; pods need
	// not tolerate them.
	StartupTaints []corev1.Taint
	// Limits is what the NodePool may still add: cpu, memory and ResourceNodes.
	// A missing resource is unlimited.
	Limits corev1.ResourceList
	// InstanceTypes are the types this template may launch, with offerings
	// whose Available flags reflect current capacity.
	InstanceTypes []*offerings.InstanceType
	// NodeCosts is what each node costs besides its instance (root volume,
	// public IPv4, a stated per-node charge); the solver minimises the bill
	// that includes it (offerings.NodeBill).
	NodeCosts offerings.NodeCosts
	// Burstable says how burstable types are used and priced; "" is
	// offerings.BurstableBaseline.
	Burstable offerings.BurstablePolicy
}

// ExistingNode is a node that already exists or is being launched, with the
// pods bound (or nominated) to it. Pending pods are placed on existing nodes
// before any new claim is made.
type ExistingNode struct {
	Node *corev1.Node
	// Pods are the pods running on or already nominated to the node,
	// daemonset pods included; their requests are subtracted from the node's
	// allocatable.
	Pods []*corev1.Pod
}

// Input is one scheduling problem.
type Input struct {
	// Pods are the pending pods to place.
	Pods []*corev1.Pod
	// Nodes are the existing and in-flight nodes.
	Nodes []ExistingNode
	// DaemonSetPods are the pods daemonsets would run on every node they
	// fit: one per daemonset, typically built from its pod template.
	DaemonSetPods []*corev1.Pod
	// Templates are the node templates new nodes may be made from.
	Templates []*NodeTemplate
	// Namespaces supply the labels that pod affinity namespaceSelectors
	// match; a namespace not listed has only kubernetes.io/metadata.name.
	Namespaces []*corev1.Namespace
	// MaxInstanceTypes caps each claim's instance-type list; 0 means
	// DefaultMaxInstanceTypes.
	MaxInstanceTypes int
	// ClaimPriceTolerance is how far above a claim's bill, as a fraction, a
	// listed type's bill may be; 0 means ClaimPriceTolerance (10%).
	// math.Inf(1) lists every type that fits, cheapest bill first: for a
	// caller that trims the list by a ceiling of its own, as consolidation
	// keeps only the types that preserve a move's saving.
	ClaimPriceTolerance float64
	// Catalog, when set and holding every template's instance types, is
	// their compiled form (see NewCatalog), so that repeated solves do not
	// compile them again. A type it lacks makes the solve compile them all,
	// as without one; the plan is the same either way.
	Catalog *Catalog
}

// Plan is the solver's answer. Every input pod appears exactly once: in a
// NodeClaim, in an ExistingNode placement, or in Unschedulable.
type Plan struct {
	NodeClaims    []*NodeClaim
	ExistingNodes []*NodePlacement
	Unschedulable []*PodError
}

// NodeClaim is a node to launch: any of InstanceTypes, in any zone and capacity
// type that Requirements allow and an available offering provides.
type NodeClaim struct {
	// Template is the template the claim was made from.
	Template *NodeTemplate
	// Hostname is a placeholder hostname, unique within the plan, that
	// topology constraints on kubernetes.io/hostname refer to.
	Hostname string
	// Requirements are the template's requirements narrowed by every pod
	// placed on the claim.
	Requirements Requirements
	// InstanceTypes holds every type that fits all pods and daemonset
	// overhead, has a compatible available offering and is billed no more
	// than ClaimPriceTolerance above the cheapest, cheapest bill first,
	// capped at Input.MaxInstanceTypes.
	InstanceTypes []*offerings.InstanceType
	// Pods are the pods placed on the claim, in placement order.
	Pods []*corev1.Pod
	// PodRequests sums the requests of Pods.
	PodRequests corev1.ResourceList
	// DaemonSetRequests sums the requests of the daemonset pods that will run
	// on the node (for the cheapest instance type).
	DaemonSetRequests corev1.ResourceList
}

// Offerings returns the available offerings of it that the claim's
// requirements allow.
func (c *NodeClaim) Offerings(it *offerings.InstanceType) []offerings.Offering {
	var out []offerings.Offering
	for _, o := range it.Offerings {
		if o.Available && c.Requirements.Allows(offerings.LabelZone, o.Zone) && c.Requirements.Allows(offerings.LabelCapacityType, o.CapacityType) {
			out = append(out, o)
		}
	}
	return out
}

// CheapestOffering returns the cheapest type and offering the claim could be
// launched as, and false if none is available.
func (c *NodeClaim) CheapestOffering() (*offerings.InstanceType, offerings.Offering, bool) {
	var bestType *offerings.InstanceType
	var best offerings.Offering
	for _, it := range c.InstanceTypes {
		for _, o := range c.Offerings(it) {
			if bestType == nil || o.Price < best.Price {
				bestType, best = it, o
			}
		}
	}
	return bestType, best, bestType != nil
}

// Price is the claim's hourly bill (offerings.NodeBill): the least, over its
// types and their offerings, of the offering's price plus the template's
// per-node costs plus, under BurstableCredits, the surplus credits its pods'
// and daemonsets' cpu requests would cost. 0 if no offering is available.
func (c *NodeClaim) Price() float64 {
	_, _, bill, _ := c.CheapestBill()
	return bill
}

// ListPrice is the hourly list price of the claim's cheapest offering, the
// instance alone (0 if none).
func (c *NodeClaim) ListPrice() float64 {
	_, o, _ := c.CheapestOffering()
	return o.Price
}

// CheapestBill returns the type and offering with the lowest bill the claim
// could be launched as, that bill, and false if none is available.
func (c *NodeClaim) CheapestBill() (*offerings.InstanceType, offerings.Offering, float64, bool) {
	var bestType *offerings.InstanceType
	var best offerings.Offering
	bestBill := 0.0
	requested := c.PodRequests.Cpu().MilliValue() + c.DaemonSetRequests.Cpu().MilliValue()
	for _, it := range c.InstanceTypes {
		for _, o := range c.Offerings(it) {
			if bill := offerings.NodeBill(it, o, c.Template.NodeCosts, c.Template.Burstable, requested); bestType == nil || bill < bestBill {
				bestType, best, bestBill = it, o, bill
			}
		}
	}
	return bestType, best, bestBill, bestType != nil
}

// Labels returns the labels the node will carry that the claim already fixes:
// the template's labels, the NodePool name, and every requirement narrowed to
// a single value.
func (c *NodeClaim) Labels() map[string]string {
	labels := make(map[string]string, len(c.Template.Labels)+4)
	for k, v := range c.Template.Labels {
		labels[k] = v
	}
	for _, r := range c.Requirements.Items() {
		if vals, finite := r.Values(); finite && len(vals) == 1 {
			labels[r.Key] = vals[0]
		}
	}
	labels[offerings.LabelNodePool] = c.Template.NodePool
	return labels
}

// NodePlacement lists the pods placed on one existing node.
type NodePlacement struct {
	Node *corev1.Node
	Pods []*corev1.Pod
}

// PodError says why a pod could not be placed.
type PodError struct {
	Pod    *corev1.Pod
	Reason string
}

// Error renders the reason with the pod's name: `pod default/x: ...`.
func (e *PodError) Error() string {
	return fmt.Sprintf("pod %s/%s: %s", e.Pod.Namespace, e.Pod.Name, e.Reason)
}
