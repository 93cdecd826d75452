package config

import (
	"fmt"
	"slices"
	"time"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// Cfg is the configuration type, short for the refusal table.
type Cfg = kubeletconfig.KubeletConfiguration

// refusal is a setting berth does not enforce yet whose being ignored
// would weaken security or resource protection: a value other than the
// ones honoured is refused at start-up, naming the field, instead of being
// accepted and silently not in force. The upstream default of each is
// always honoured (berth's behaviour at the default is documented where
// it differs).
type refusal struct {
	field    string            // JSON path
	honoured func(c *Cfg) bool // berth can honour c's value
	accepted string            // the values berth honours, for the message
	why      string            // what ignoring the value would weaken
}

// refusals is the one table of such settings. When a feature that enforces
// one of them lands, delete its line and add the field to supported.go.
//
// Keep each entry on one line. Settings that only make berth stricter when
// ignored (localStorageCapacityIsolation: false, ...) or that tune a
// mechanism rather than ask for protection are not refused; they are
// reported as not acted on, like every other unsupported field.
func refusals() []refusal {
	return []refusal{
		{"cpuManagerPolicy", func(c *Cfg) bool { return c.CPUManagerPolicy == "" || c.CPUManagerPolicy == "none" }, "none", "pods would not get the exclusive CPUs the policy promises"},
		{"memoryManagerPolicy", func(c *Cfg) bool { return c.MemoryManagerPolicy == "" || c.MemoryManagerPolicy == "None" }, "None", "pods would not get the NUMA memory the policy promises"},
		{"topologyManagerPolicy", func(c *Cfg) bool { return c.TopologyManagerPolicy == "" || c.TopologyManagerPolicy == "none" }, "none", "pods would not get the NUMA alignment the policy promises"},
		{"reservedSystemCPUs", func(c *Cfg) bool { return c.ReservedSystemCPUs == "" }, `""`, "the CPUs would not be kept for the system"},
		{"qosReserved", func(c *Cfg) bool { return len(c.QOSReserved) == 0 }, "{}", "memory would not be reserved at the QoS level"},
		{"memoryReservationPolicy", func(c *Cfg) bool { return oneOf(string(c.MemoryReservationPolicy), "", "None") }, "None", "pods would not get memory.min/memory.low protection"},
		{"podsPerCore", func(c *Cfg) bool { return c.PodsPerCore == 0 }, "0", "more pods than that could run on the node"},
		{"enableServer", func(c *Cfg) bool { return ptr.Deref(c.EnableServer, true) }, "true", "the kubelet API would still be served"},
		{"streamingConnectionIdleTimeout", func(c *Cfg) bool { return oneOf(c.StreamingConnectionIdleTimeout.Duration, 0, 4*time.Hour) }, "4h0m0s, or 0s (none)", "idle exec, attach and port-forward streams would stay open"},
		{"tlsCurvePreferences", func(c *Cfg) bool { return len(c.TLSCurvePreferences) == 0 }, "[]", "the kubelet API would offer curves outside that list"},
	}
}

// checkRefusals returns one error per setting in cfg that berth cannot
// honour, each naming the field and, where there is one, its flag.
func checkRefusals(cfg *Cfg, flagOf map[string]string) []error {
	var errs []error
	for _, r := range refusals() {
		if r.honoured(cfg) {
			continue
		}
		name := r.field
		if f, ok := flagOf[r.field]; ok {
			name += " (--" + f + ")"
		}
		errs = append(errs, fmt.Errorf("%s is refused: berth does not enforce it yet, and ignoring it means %s; leave it at %s", name, r.why, r.accepted))
	}
	return errs
}

func oneOf[T comparable](v T, ok ...T) bool { return slices.Contains(ok, v) }

// subsetOf reports whether every element of list is one of ok.
func subsetOf(list []string, ok ...string) bool {
	for _, v := range list {
		if !slices.Contains(ok, v) {
			return false
		}
	}
	return true
}
