// Package kubecluster implements provisioning.Cluster against a real
// Kubernetes API server with client-go. Reads come from shared informers (so
// a provisioning pass costs no API calls); writes are narrow: a
// strategic-merge patch to cordon, a merge patch of only the named node
// annotations, a status patch to nominate, pods/binding to bind, and
// policy/v1 Eviction to evict, so PodDisruptionBudgets hold and a 429 surfaces as provisioning.EvictionBlockedError. Every write carries a
// field manager. Nodes created and pods nominated through it are overlaid on
// the informer caches until they catch up, so the provisioner never buys the
// same capacity twice because a cache lagged.
//
// Usage:
//
//	c, err := kubecluster.New(clientset, kubecluster.Options{})
//	if err != nil { ... }
//	if err := c.Start(ctx); err != nil { ... }
//	prov, err := provisioning.New(c, cloud, pools, provisioning.Options{})
package kubecluster
