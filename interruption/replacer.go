package interruption

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/provisioning"
)

// ProvisionerReplacer is the Replacer backed by fleetpack's provisioner: it
// places the pods at once with Provisioner.ProvisionNow, which treats their
// current nodes as leaving and records the capacity it launches as in flight,
// so the pods' re-created replicas land on it.
type ProvisionerReplacer struct {
	Provisioner *provisioning.Provisioner
}

var _ Replacer = ProvisionerReplacer{}

// Replace implements Replacer. It returns the nodes launched for the pods and
// the existing nodes they were placed on; pods that could not be placed are
// named in the error.
func (r ProvisionerReplacer) Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	if r.Provisioner == nil {
		return nil, errors.New("interruption: ProvisionerReplacer: nil Provisioner")
	}
	res, err := r.Provisioner.ProvisionNow(ctx, pods)
	if res == nil {
		return nil, err
	}
	nodes := res.Nodes()
	if err != nil {
		return nodes, err
	}
	if len(res.Unschedulable) > 0 {
		errs := make([]error, len(res.Unschedulable))
		for i, pe := range res.Unschedulable {
			errs[i] = pe
		}
		return nodes, fmt.Errorf("interruption: %d of %d pods could not be placed: %w", len(res.Unschedulable), len(pods), errors.Join(errs...))
	}
	return nodes, nil
}
