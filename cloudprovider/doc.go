// Package cloudprovider defines the small interface fleetpack launches and
// removes machines through, and the errors callers act on. The AWS
// implementation and its faithful fake EC2 live in subpackages.
package cloudprovider
