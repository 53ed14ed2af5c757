package aws

import (
	"errors"

	"github.com/aws/smithy-go"
)

// FailureScope says how much a CreateFleet error code rules out: the one
// pool that failed, the subnet it was sent to, its instance family, or the
// whole capacity type.
type FailureScope int

const (
	// ScopeNone: not a capacity error (bad request, permissions, a launch
	// template problem); nothing is marked and the launch fails with the
	// error itself.
	ScopeNone FailureScope = iota
	// ScopeOffering: this (capacity type, instance type, zone) pool cannot
	// be launched right now.
	ScopeOffering
	// ScopeInstanceType: this instance type cannot be launched with this
	// capacity type in any zone (an account limit on the type).
	ScopeInstanceType
	// ScopeFamily: an account quota counted per instance family (vCPU
	// quotas) is exhausted for this capacity type, in every zone.
	ScopeFamily
	// ScopeCapacityType: an account-wide limit on the capacity type (the
	// Spot instance quota, Spot's service-linked role): nothing of this
	// capacity type can launch anywhere, so fall back at once.
	ScopeCapacityType
	// ScopeSubnet: the subnet ran out of addresses; the pool itself is fine
	// in another subnet.
	ScopeSubnet
)

func (s FailureScope) String() string {
	switch s {
	case ScopeOffering:
		return "offering"
	case ScopeInstanceType:
		return "instance-type"
	case ScopeFamily:
		return "family"
	case ScopeCapacityType:
		return "capacity-type"
	case ScopeSubnet:
		return "subnet"
	default:
		return "none"
	}
}

// fleetErrorScope classifies every code EC2 documents (API reference,
// "Error codes for the Amazon EC2 API") that means capacity cannot be had
// right now, as CreateFleet returns them in CreateFleetOutput.Errors.
// Karpenter treats only the first six as capacity and marks each one per
// pool, so a Spot quota error is re-learned pool by pool; here account-wide
// codes rule out the whole capacity type at once.
func fleetErrorScope(code string) FailureScope {
	switch code {
	// No capacity in the pool.
	case "InsufficientInstanceCapacity":
		return ScopeOffering
	// Spot: no spare capacity for this request's pools.
	case "UnfulfillableCapacity":
		return ScopeOffering
	// Import/other capacity shortage.
	case "InsufficientCapacity":
		return ScopeOffering
	// The type is constrained or not offered in this zone.
	case "Unsupported":
		return ScopeOffering
	// Our Spot max price is below the pool's current price.
	case "SpotMaxPriceTooLow":
		return ScopeOffering
	// A targeted Capacity Reservation is full.
	case "ReservationCapacityExceeded":
		return ScopeOffering
	case "InsufficientReservedInstanceCapacity":
		return ScopeOffering
	// Dedicated host capacity.
	case "InsufficientHostCapacity":
		return ScopeOffering
	// Not enough Elastic IP addresses for the launch.
	case "InsufficientAddressCapacity":
		return ScopeOffering
	// Per-type running-instance limit (older accounts).
	case "InstanceLimitExceeded":
		return ScopeInstanceType
	// On-Demand vCPU quotas are counted per family class.
	case "VcpuLimitExceeded":
		return ScopeFamily
	// Account-wide Spot instance quota.
	case "MaxSpotInstanceCountExceeded":
		return ScopeCapacityType
	// Account-wide limits on the number of fleets / Spot requests.
	case "MaxFleetCountExceeded":
		return ScopeCapacityType
	case "MaxSpotFleetRequestCountExceeded":
		return ScopeCapacityType
	// Spot's service-linked role cannot be created: no Spot at all.
	case "AuthFailure.ServiceLinkedRoleCreationNotPermitted":
		return ScopeCapacityType
	// The subnet has no free address left.
	case "InsufficientFreeAddressesInSubnet":
		return ScopeSubnet
	}
	return ScopeNone
}

// ClassifyFleetError returns how much a CreateFleet error code rules out.
// Unknown codes are ScopeNone.
func ClassifyFleetError(code string) FailureScope {
	return fleetErrorScope(code)
}

// notFoundCode reports whether code is one EC2 uses for an instance id it
// does not know.
func notFoundCode(code string) bool {
	return code == "InvalidInstanceID.NotFound" || code == "InvalidInstanceID.Malformed"
}

// apiErrorCode returns the code of a smithy API error, or "".
func apiErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool { return notFoundCode(apiErrorCode(err)) }
