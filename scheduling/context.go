package scheduling

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Context is an Input compiled once for many solves that differ only in
// which pods are placed and which existing nodes are left out: the
// simulations of one consolidation pass ("can these nodes' pods go
// elsewhere?"). Templates, the catalog, daemonset overhead and the existing
// nodes are compiled once; each Solve then costs about what placing its pods
// costs. It is as pure as Solve: no I/O, and the same calls give the same
// plans. A Context is not safe for concurrent use.
//
// The pods of the compiled Input are the workload the templates' dual prices
// are sized on (see value.go), so compile it with every pod later solves may
// place; Context.Solve(in.Pods, nil) gives exactly Solve(in).
type Context struct {
	in        Input
	dims      *resourceDims
	templates []*compiledTemplate
	// limits are each template's remaining cpu, memory and nodes before
	// any claim, restored at the start of each solve.
	limits  [][3]int64
	nodes   []*nodeState
	pods    []*podInfo
	classes map[string]*podClass
	keyBuf  []byte
	// variantTemplates numbers the classes' variant templates across
	// solves (see variantTemplate.id).
	variantTemplates int32
}

// NewContext compiles in for repeated solves. It fails only on malformed
// input, as Solve does.
func NewContext(in Input) (*Context, error) {
	return compile(in)
}

// Solve places pods on the compiled existing nodes except those named in
// without, and on new claims from the compiled templates, exactly as Solve
// would with that Input. A pod asking for a resource the compiled Input never
// mentioned is solved with a fresh compilation, so the answer never depends
// on what was compiled.
func (c *Context) Solve(pods []*corev1.Pod, without map[string]bool) (*Plan, error) {
	dims := &resourceDims{names: slices.Clone(c.dims.names), index: maps.Clone(c.dims.index)}
	infos, err := c.podInfos(pods, dims, "pods")
	if err != nil {
		return nil, err
	}
	if dims.len() != c.dims.len() {
		in := c.in
		in.Pods = pods
		in.Nodes = slices.DeleteFunc(slices.Clone(in.Nodes), func(n ExistingNode) bool { return without[n.Node.Name] })
		return Solve(in)
	}
	return c.solver(infos, without).solve(), nil
}

func (c *Context) class(pod *corev1.Pod) *podClass {
	c.keyBuf = classKey(c.keyBuf[:0], pod)
	if pc, ok := c.classes[string(c.keyBuf)]; ok {
		return pc
	}
	pc := newPodClass(pod, len(c.in.Templates))
	c.classes[string(c.keyBuf)] = pc
	return pc
}

// podInfos prepares pods for a solve over dims (which gains the resources
// they ask for), in one allocation rather than one per pod; field names the
// input field in errors.
func (c *Context) podInfos(pods []*corev1.Pod, dims *resourceDims, field string) ([]*podInfo, error) {
	infos := make([]podInfo, len(pods))
	out := make([]*podInfo, len(pods))
	for i, pod := range pods {
		if pod == nil {
			return nil, fmt.Errorf("%s[%d]: is nil", field, i)
		}
		infos[i] = podInfo{pod: pod, requests: podRequests(pod, dims), hostPorts: podHostPorts(pod), class: c.class(pod)}
		out[i] = &infos[i]
	}
	return out, nil
}

// compile prepares everything of in that does not change while pods are
// placed.
func compile(in Input) (*Context, error) {
	if t := in.ClaimPriceTolerance; t < 0 || math.IsNaN(t) {
		return nil, fmt.Errorf("claimPriceTolerance: must be 0 or more, got %v", t)
	}
	c := &Context{in: in, dims: newResourceDims(), classes: map[string]*podClass{}}
	var err error
	if c.pods, err = c.podInfos(in.Pods, c.dims, "pods"); err != nil {
		return nil, err
	}
	daemonSets, err := c.podInfos(in.DaemonSetPods, c.dims, "daemonSetPods")
	if err != nil {
		return nil, err
	}
	// Requests were sized before every resource name was known.
	for _, p := range c.pods {
		p.requests = resize(p.requests, c.dims.len())
	}
	for _, p := range daemonSets {
		p.requests = resize(p.requests, c.dims.len())
	}

	templates := slices.Clone(in.Templates)
	for i, t := range templates {
		if t == nil {
			return nil, fmt.Errorf("templates[%d]: is nil", i)
		}
		if t.NodePool == "" {
			return nil, fmt.Errorf("templates[%d].nodePool: must not be empty", i)
		}
	}
	// Weight first, then name, so equal weights resolve the same way each time.
	slices.SortStableFunc(templates, func(a, b *NodeTemplate) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), strings.Compare(a.NodePool, b.NodePool))
	})
	// Class variants index templates by their position in in.Templates order;
	// keep that mapping by compiling in sorted order with original indices.
	index := make(map[*NodeTemplate]int, len(in.Templates))
	for i, t := range in.Templates {
		index[t] = i
	}
	total := make(vec, c.dims.len())
	for _, p := range c.pods {
		total.add(p.requests)
	}
	median := medianPod(c.pods)
	cat, compiled, err := solveCatalog(in.Catalog, templates)
	if err != nil {
		return nil, err
	}
	ox := newOfferIndex(cat, compiled)
	for i, t := range templates {
		ct := compileTemplate(index[t], t, compiled[i], c.dims, daemonSets, total, median, ox)
		c.templates = append(c.templates, ct)
		c.limits = append(c.limits, [3]int64{ct.remainingCPU, ct.remainingMemory, ct.remainingNodes})
	}

	for i := range in.Nodes {
		n := &in.Nodes[i]
		if n.Node == nil {
			return nil, fmt.Errorf("nodes[%d].node: is nil", i)
		}
		c.nodes = append(c.nodes, newNodeState(n, c.dims))
	}
	slices.SortStableFunc(c.nodes, func(a, b *nodeState) int { return strings.Compare(a.node.Name, b.node.Name) })
	return c, nil
}

// solver starts one solve of pods over the compiled nodes not in without.
// Everything a solve changes is fresh or restored here.
func (c *Context) solver(pods []*podInfo, without map[string]bool) *solver {
	maxTypes := c.in.MaxInstanceTypes
	if maxTypes <= 0 {
		maxTypes = DefaultMaxInstanceTypes
	}
	tolerance := c.in.ClaimPriceTolerance
	if tolerance == 0 {
		tolerance = ClaimPriceTolerance
	}
	s := &solver{dims: c.dims, templates: c.templates, pods: pods, maxTypes: maxTypes, tolerance: tolerance, hints: map[hintKey]int{},
		variantTemplates: &c.variantTemplates}
	for i, ct := range c.templates {
		ct.remainingCPU, ct.remainingMemory, ct.remainingNodes = c.limits[i][0], c.limits[i][1], c.limits[i][2]
	}
	s.nodes = make([]*nodeState, 0, len(c.nodes))
	for _, n := range c.nodes {
		if without[n.node.Name] {
			continue
		}
		fresh := *n
		fresh.free = slices.Clone(n.free)
		fresh.ports = slices.Clip(n.ports)
		fresh.placed = nil
		s.nodes = append(s.nodes, &fresh)
	}
	s.topology = newTopology(s.pods, s.nodes, s.templates, c.in.Namespaces)
	return s
}
