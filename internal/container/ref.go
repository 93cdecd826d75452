package container

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
)

// FieldPath is the field path of the pod's container by that name in
// event references, as upstream's GenerateContainerRef writes it:
// spec.containers{name}, spec.initContainers{name} or
// spec.ephemeralContainers{name}. A name the spec does not have (a
// container of an orphan) is taken for a regular container.
func FieldPath(pod *v1.Pod, name string) string {
	if pod != nil {
		for i := range pod.Spec.InitContainers {
			if pod.Spec.InitContainers[i].Name == name {
				return fmt.Sprintf("spec.initContainers{%s}", name)
			}
		}
		for i := range pod.Spec.EphemeralContainers {
			if pod.Spec.EphemeralContainers[i].Name == name {
				return fmt.Sprintf("spec.ephemeralContainers{%s}", name)
			}
		}
	}
	return fmt.Sprintf("spec.containers{%s}", name)
}
