package cm

import (
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// WithPIDs adds the node's process ID capacity (ResourcePIDs) to capacity,
// as upstream's internal capacity: the smaller of kernel.pid_max and
// kernel.threads-max under procRoot (/proc). Left out when neither reads.
func WithPIDs(capacity v1.ResourceList, procRoot string) v1.ResourceList {
	out := capacity.DeepCopy()
	if out == nil {
		out = v1.ResourceList{}
	}
	n := int64(-1)
	for _, f := range []string{"sys/kernel/pid_max", "sys/kernel/threads-max"} {
		v, err := readInt(filepath.Join(procRoot, f))
		if err == nil && (n < 0 || v < n) {
			n = v
		}
	}
	if n >= 0 {
		out[ResourcePIDs] = *resource.NewQuantity(n, resource.DecimalSI)
	}
	return out
}
