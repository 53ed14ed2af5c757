// Package offerings describes what can be bought: EC2 instance types, their
// capacity, overhead and labels, and their offerings (zone x capacity type x
// price x availability). It is the leaf of fleetpack's import graph; the
// scheduler, the cloud provider and the provisioner all read it.
package offerings
