package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/fleetpack/fleetpack/provisioning"
)

// maxPlanPods bounds the pods one plan takes (pending and bound, over every
// input file): the solver's memory grows with them (about 54 MiB for 20,000
// pods, docs/benchmarks.md), and a typo such as replicas: 1000000000 must be
// an error, not a machine out of memory.
const maxPlanPods = 100_000

// scenario is everything read from the input files.
type scenario struct {
	pools      []*provisioning.NodePool
	pending    []*corev1.Pod
	daemonSets []*appsv1.DaemonSet
	nodes      []*corev1.Node
	// bound are pods with spec.nodeName, by node name.
	bound map[string][]*corev1.Pod
}

// docRef names one document for error messages: the file, its position and,
// once known, its kind and name.
type docRef struct {
	file  string
	index int
	kind  string
	name  string
}

func (d docRef) errorf(format string, args ...any) error {
	where := fmt.Sprintf("%s: document %d", d.file, d.index)
	if d.kind != "" {
		obj := d.kind
		if d.name != "" {
			obj += " " + d.name
		}
		where += " (" + obj + ")"
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

// supportedKinds maps each kind the tool reads to its apiVersion.
var supportedKinds = map[string]string{
	provisioning.Kind: provisioning.APIVersion,
	"Pod":             "v1",
	"Node":            "v1",
	"Deployment":      "apps/v1",
	"StatefulSet":     "apps/v1",
	"DaemonSet":       "apps/v1",
}

// loadFiles reads every file into one scenario. Any error aborts the load.
func loadFiles(paths []string) (*scenario, error) {
	sc := &scenario{bound: map[string][]*corev1.Pod{}}
	seenPods := map[string]docRef{}
	seenNodes := map[string]docRef{}
	seenPools := map[string]docRef{}
	// Pods bound to nodes are checked once every node is known, so that
	// files may come in any order.
	type boundPod struct {
		ref docRef
		pod *corev1.Pod
	}
	var boundPods []boundPod
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		docs, err := splitDocuments(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for i, doc := range docs {
			ref := docRef{file: path, index: i + 1}
			objs, err := decode(ref, doc)
			if err != nil {
				return nil, err
			}
			if objs == nil {
				continue
			}
			ref.kind, ref.name = objs.kind, objs.name
			switch {
			case objs.pool != nil:
				if prev, ok := seenPools[objs.pool.Name]; ok {
					return nil, ref.errorf("metadata.name: NodePool %q already defined in %s document %d", objs.pool.Name, prev.file, prev.index)
				}
				seenPools[objs.pool.Name] = ref
				sc.pools = append(sc.pools, objs.pool)
			case objs.node != nil:
				if prev, ok := seenNodes[objs.node.Name]; ok {
					return nil, ref.errorf("metadata.name: Node %q already defined in %s document %d", objs.node.Name, prev.file, prev.index)
				}
				seenNodes[objs.node.Name] = ref
				sc.nodes = append(sc.nodes, objs.node)
			case objs.daemonSet != nil:
				sc.daemonSets = append(sc.daemonSets, objs.daemonSet)
			}
			if total := len(seenPods) + len(objs.pods); total > maxPlanPods {
				return nil, ref.errorf("the input holds more than %d pods (%d so far), the most one plan takes", maxPlanPods, total)
			}
			for _, pod := range objs.pods {
				key := pod.Namespace + "/" + pod.Name
				if prev, ok := seenPods[key]; ok {
					return nil, ref.errorf("pod %s: name already used by %s document %d", key, prev.file, prev.index)
				}
				seenPods[key] = ref
				if pod.Spec.NodeName != "" {
					boundPods = append(boundPods, boundPod{ref, pod})
				} else {
					sc.pending = append(sc.pending, pod)
				}
			}
		}
	}
	for _, b := range boundPods {
		if _, ok := seenNodes[b.pod.Spec.NodeName]; !ok {
			return nil, b.ref.errorf("spec.nodeName: node %q is not defined in any input file", b.pod.Spec.NodeName)
		}
		sc.bound[b.pod.Spec.NodeName] = append(sc.bound[b.pod.Spec.NodeName], b.pod)
	}
	if len(sc.pools) == 0 {
		return nil, errors.New("no NodePool (" + provisioning.APIVersion + ") in the input: the solver needs at least one to create nodes")
	}
	return sc, nil
}

// splitDocuments splits a multi-document YAML stream.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

// decoded is what one document yields.
type decoded struct {
	kind, name string
	pool       *provisioning.NodePool
	node       *corev1.Node
	daemonSet  *appsv1.DaemonSet
	pods       []*corev1.Pod
}

// decode turns one document into objects; it returns nil for an empty
// document.
func decode(ref docRef, doc []byte) (*decoded, error) {
	jsonDoc, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, ref.errorf("invalid YAML: %v", err)
	}
	if t := bytes.TrimSpace(jsonDoc); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	var generic map[string]any
	if err := json.Unmarshal(jsonDoc, &generic); err != nil {
		return nil, ref.errorf("a document must be a mapping (an object): %v", err)
	}
	kind, _ := generic["kind"].(string)
	apiVersion, _ := generic["apiVersion"].(string)
	var namespace, name string
	if md, ok := generic["metadata"].(map[string]any); ok {
		name, _ = md["name"].(string)
		namespace, _ = md["namespace"].(string)
	}
	ref.kind, ref.name = kind, name
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	if kind != "" && kind != provisioning.Kind && kind != "Node" {
		ref.name = namespace + "/" + name
	}
	if kind == "" {
		return nil, ref.errorf("kind: must be set (one of %s)", kindList())
	}
	want, ok := supportedKinds[kind]
	if !ok {
		return nil, ref.errorf("kind: %q is not supported (one of %s)", kind, kindList())
	}
	if apiVersion != want && !(kind == provisioning.Kind && apiVersion == provisioning.KarpenterAPIVersion) {
		return nil, ref.errorf("apiVersion: must be %q for %s, got %q", want, kind, apiVersion)
	}
	if name == "" {
		return nil, ref.errorf("metadata.name: must not be empty")
	}
	// Quantities are checked on the generic form first: the typed decoder's
	// error for a malformed quantity does not say which field holds it.
	if err := checkQuantities(generic, ""); err != nil {
		return nil, ref.errorf("%v", err)
	}
	out := &decoded{kind: kind, name: ref.name}
	strict := func(into any) error {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return ref.errorf("%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "error unmarshaling JSON: "), "while decoding JSON: "))
		}
		return nil
	}
	switch kind {
	case provisioning.Kind:
		np, err := provisioning.ParseNodePool(doc)
		if err != nil {
			return nil, ref.errorf("%v", err)
		}
		out.pool = np
	case "Node":
		node := &corev1.Node{}
		if err := strict(node); err != nil {
			return nil, err
		}
		if len(node.Status.Allocatable) == 0 && len(node.Status.Capacity) == 0 {
			return nil, ref.errorf("status.allocatable: a Node needs status.allocatable (or status.capacity) to hold pods")
		}
		if len(node.Status.Allocatable) == 0 {
			node.Status.Allocatable = node.Status.Capacity.DeepCopy()
		}
		markReady(node)
		out.node = node
	case "Pod":
		pod := &corev1.Pod{}
		if err := strict(pod); err != nil {
			return nil, err
		}
		pod.Namespace = namespace
		pod.UID = types.UID("pod/" + namespace + "/" + name)
		if err := checkContainers(&pod.Spec, "spec"); err != nil {
			return nil, ref.errorf("%v", err)
		}
		out.pods = []*corev1.Pod{pod}
	case "Deployment":
		d := &appsv1.Deployment{}
		if err := strict(d); err != nil {
			return nil, err
		}
		d.Namespace = namespace
		pods, err := replicas(ref, d.ObjectMeta, kind, d.Spec.Replicas, &d.Spec.Template)
		if err != nil {
			return nil, err
		}
		out.pods = pods
	case "StatefulSet":
		s := &appsv1.StatefulSet{}
		if err := strict(s); err != nil {
			return nil, err
		}
		s.Namespace = namespace
		pods, err := replicas(ref, s.ObjectMeta, kind, s.Spec.Replicas, &s.Spec.Template)
		if err != nil {
			return nil, err
		}
		out.pods = pods
	case "DaemonSet":
		ds := &appsv1.DaemonSet{}
		if err := strict(ds); err != nil {
			return nil, err
		}
		ds.Namespace = namespace
		if err := checkContainers(&ds.Spec.Template.Spec, "spec.template.spec"); err != nil {
			return nil, ref.errorf("%v", err)
		}
		out.daemonSet = ds
	}
	return out, nil
}

func kindList() string {
	kinds := slices.Sorted(maps.Keys(supportedKinds))
	return strings.Join(kinds, ", ")
}

// replicas expands a workload into its pods, named <name>-<index>.
func replicas(ref docRef, meta metav1.ObjectMeta, kind string, n *int32, tmpl *corev1.PodTemplateSpec) ([]*corev1.Pod, error) {
	count := int32(1)
	if n != nil {
		count = *n
	}
	if count < 0 {
		return nil, ref.errorf("spec.replicas: must not be negative, got %d", count)
	}
	if count > maxPlanPods {
		return nil, ref.errorf("spec.replicas: %d is more than %d, the most pods one plan takes", count, maxPlanPods)
	}
	if err := checkContainers(&tmpl.Spec, "spec.template.spec"); err != nil {
		return nil, ref.errorf("%v", err)
	}
	pods := make([]*corev1.Pod, 0, count)
	for i := range count {
		pods = append(pods, podFromTemplate(meta, kind, fmt.Sprintf("%s-%d", meta.Name, i), tmpl))
	}
	return pods, nil
}

// podFromTemplate builds a pod as the workload's controller would: the
// template's labels and spec, a controller reference to the workload.
func podFromTemplate(owner metav1.ObjectMeta, kind, name string, tmpl *corev1.PodTemplateSpec) *corev1.Pod {
	controller := true
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   owner.Namespace,
			UID:         types.UID("pod/" + owner.Namespace + "/" + name),
			Labels:      maps.Clone(tmpl.Labels),
			Annotations: maps.Clone(tmpl.Annotations),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: kind, Name: owner.Name, Controller: &controller,
				UID: types.UID(strings.ToLower(kind) + "/" + owner.Namespace + "/" + owner.Name),
			}},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	pod.Spec.NodeName = ""
	return pod
}

// checkContainers rejects a pod spec without containers: the solver would
// see a pod that asks for nothing, which is almost always a typo.
func checkContainers(spec *corev1.PodSpec, path string) error {
	if len(spec.Containers) == 0 {
		return fmt.Errorf("%s.containers: must have at least one container", path)
	}
	return nil
}

// markReady gives a node a Ready condition unless the document says
// otherwise: a what-if node is assumed to be up.
func markReady(node *corev1.Node) {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return
		}
	}
	node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue})
}

// quantityKeys are the fields whose values are maps of resource quantities
// in the kinds the tool reads.
var quantityKeys = map[string]bool{"requests": true, "limits": true, "capacity": true, "allocatable": true, "overhead": true}

// checkQuantities walks a decoded document and parses every value of a
// resource-list field, returning the first malformed one with its path.
func checkQuantities(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			child := joinPath(path, k)
			if list, ok := v[k].(map[string]any); ok && quantityKeys[k] {
				for _, name := range sortedKeys(list) {
					if err := checkQuantity(joinPath(child, name), list[name]); err != nil {
						return err
					}
				}
				continue
			}
			if err := checkQuantities(v[k], child); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := checkQuantities(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkQuantity(path string, v any) error {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = fmt.Sprint(v)
	default:
		return fmt.Errorf("%s: a quantity must be a string or a number, got %v", path, v)
	}
	if _, err := resource.ParseQuantity(s); err != nil {
		return fmt.Errorf("%s: malformed quantity %q: %v", path, s, err)
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
