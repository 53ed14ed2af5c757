package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/scheduling"
)

// CloudProvider launches and removes the machines behind nodes.
type CloudProvider interface {
	// Create launches one instance for the claim and returns the node it will
	// register as: spec.providerID set, the labels users query, capacity and
	// allocatable of the chosen type, and the template's taints and startup
	// taints. On failure to find capacity it returns *InsufficientCapacityError.
	Create(ctx context.Context, claim *scheduling.NodeClaim) (*corev1.Node, error)
	// Delete terminates the instance behind providerID. Deleting an instance
	// that is already gone returns *NotFoundError.
	Delete(ctx context.Context, providerID string) error
	// Get returns the node for a launched instance, or *NotFoundError.
	Get(ctx context.Context, providerID string) (*corev1.Node, error)
	// List returns every running instance this provider launched.
	List(ctx context.Context) ([]*corev1.Node, error)
	// InstanceTypes returns the catalog with current availability applied.
	InstanceTypes(ctx context.Context) ([]*offerings.InstanceType, error)
}

// OfferingKey names one capacity pool.
type OfferingKey struct {
	CapacityType string
	InstanceType string
	Zone         string
}

func (k OfferingKey) String() string {
	return k.CapacityType + ":" + k.InstanceType + ":" + k.Zone
}

// InsufficientCapacityError says no offering of a claim could be launched.
// Tried lists the pools that were attempted and failed.
type InsufficientCapacityError struct {
	Tried []OfferingKey
	// Reason is EC2's last message or code, for humans.
	Reason string
}

func (e *InsufficientCapacityError) Error() string {
	keys := make([]string, len(e.Tried))
	for i, k := range e.Tried {
		keys[i] = k.String()
	}
	return fmt.Sprintf("insufficient capacity (%s), tried %d offerings: %s", e.Reason, len(e.Tried), strings.Join(keys, ", "))
}

// NotFoundError says an instance does not exist (any more).
type NotFoundError struct {
	ProviderID string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("instance %s not found", e.ProviderID) }

// IsInsufficientCapacity reports whether err is or wraps an InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	var ice *InsufficientCapacityError
	return errors.As(err, &ice)
}

// IsNotFound reports whether err is or wraps a NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}
