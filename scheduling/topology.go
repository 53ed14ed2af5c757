package scheduling

// topology tracks topology spread and pod (anti-)affinity domains.
type topology struct{}

func newTopology(s *solver) *topology { return &topology{} }

func (t *topology) allowsNode(p *podInfo, n *nodeState) bool { return true }

func (t *topology) record(p *podInfo, labels map[string]string, c *claim) {}

// claimRequirements returns narrower requirements when topology constrains
// where p may go on c (nil when it does not), and false when it rules c out.
func (t *topology) claimRequirements(p *podInfo, c *claim, reqs *Requirements) (*Requirements, bool) {
	return nil, true
}

func (t *topology) reason(p *podInfo, reqs *Requirements) string {
	return "topology constraints cannot be met"
}

// independent reports whether p's placement neither depends on nor changes
// what other pods' constraints see.
func (t *topology) independent(p *podInfo) bool { return true }
