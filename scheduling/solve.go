package scheduling

import "errors"

// Solve places in.Pods on in.Nodes and on new NodeClaims made from
// in.Templates. It is pure and deterministic: the same input gives the same
// plan. It returns an error only when the input itself is malformed.
func Solve(in Input) (*Plan, error) {
	return nil, errors.New("not implemented")
}
