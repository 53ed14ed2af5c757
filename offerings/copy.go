package offerings

import corev1 "k8s.io/api/core/v1"

// DeepCopy returns a copy of it that shares no maps, slices or quantities
// with it, so the copy can be changed freely.
func (it *InstanceType) DeepCopy() *InstanceType {
	if it == nil {
		return nil
	}
	c := &InstanceType{
		Name:             it.Name,
		Capacity:         copyResourceList(it.Capacity),
		BaselineCPUMilli: it.BaselineCPUMilli,
		Overhead: Overhead{
			KubeReserved:      copyResourceList(it.Overhead.KubeReserved),
			SystemReserved:    copyResourceList(it.Overhead.SystemReserved),
			EvictionThreshold: copyResourceList(it.Overhead.EvictionThreshold),
		},
	}
	if it.Labels != nil {
		c.Labels = make(map[string]string, len(it.Labels))
		for k, v := range it.Labels {
			c.Labels[k] = v
		}
	}
	if it.Offerings != nil {
		c.Offerings = append([]Offering(nil), it.Offerings...)
	}
	return c
}

func copyResourceList(l corev1.ResourceList) corev1.ResourceList {
	if l == nil {
		return nil
	}
	c := make(corev1.ResourceList, len(l))
	for k, v := range l {
		c[k] = v.DeepCopy()
	}
	return c
}
