package eviction

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// Signal is an eviction signal, named as upstream's (pkg/kubelet/eviction/api).
type Signal string

// The signals berth observes. containerfs.* are accepted in the
// configuration and ignored, as upstream does when the runtime does not
// split its file systems (containerd's writable layers live on the image
// file system).
const (
	SignalMemoryAvailable            Signal = "memory.available"
	SignalAllocatableMemoryAvailable Signal = "allocatableMemory.available"
	SignalNodeFsAvailable            Signal = "nodefs.available"
	SignalNodeFsInodesFree           Signal = "nodefs.inodesFree"
	SignalImageFsAvailable           Signal = "imagefs.available"
	SignalImageFsInodesFree          Signal = "imagefs.inodesFree"
	SignalContainerFsAvailable       Signal = "containerfs.available"
	SignalContainerFsInodesFree      Signal = "containerfs.inodesFree"
	SignalPIDAvailable               Signal = "pid.available"
)

// Resources a signal reclaims beside v1's: upstream's internal names.
const (
	resourceInodes v1.ResourceName = "inodes"
	resourcePids   v1.ResourceName = "pids"
)

// signalResource is what reclaiming a signal frees; every known signal has one.
func signalResource(s Signal) (v1.ResourceName, bool) {
	switch s {
	case SignalMemoryAvailable, SignalAllocatableMemoryAvailable:
		return v1.ResourceMemory, true
	case SignalNodeFsAvailable, SignalImageFsAvailable, SignalContainerFsAvailable:
		return v1.ResourceEphemeralStorage, true
	case SignalNodeFsInodesFree, SignalImageFsInodesFree, SignalContainerFsInodesFree:
		return resourceInodes, true
	case SignalPIDAvailable:
		return resourcePids, true
	}
	return "", false
}

// signalCondition is the node condition a met threshold of s reports.
func signalCondition(s Signal) v1.NodeConditionType {
	switch s {
	case SignalMemoryAvailable, SignalAllocatableMemoryAvailable:
		return v1.NodeMemoryPressure
	case SignalPIDAvailable:
		return v1.NodePIDPressure
	}
	return v1.NodeDiskPressure
}

// Value is a threshold's amount: a quantity, or a fraction of capacity.
type Value struct {
	Quantity   *resource.Quantity
	Percentage float32 // 0.1 for "10%"
}

// quantity is the amount for a signal of the given capacity, as upstream's
// GetThresholdQuantity (the same float32 arithmetic, so the same bytes).
func (v Value) quantity(capacity int64) *resource.Quantity {
	if v.Quantity != nil {
		q := v.Quantity.DeepCopy()
		return &q
	}
	return resource.NewQuantity(int64(float64(capacity)*float64(v.Percentage)), resource.BinarySI)
}

// Threshold is one eviction threshold: the signal's available amount must
// not drop below Value. A zero GracePeriod makes it hard.
type Threshold struct {
	Signal      Signal
	Value       Value
	GracePeriod time.Duration
	MinReclaim  *Value
}

func (t Threshold) hard() bool { return t.GracePeriod == 0 }

// Config is the eviction manager's configuration, from the
// KubeletConfiguration (ParseConfig).
type Config struct {
	Thresholds []Threshold
	// PressureTransitionPeriod: how long a pressure condition stays after
	// its threshold was last met (evictionPressureTransitionPeriod).
	PressureTransitionPeriod time.Duration
	// MaxPodGracePeriodSeconds bounds the grace period of pods evicted for
	// a soft threshold (evictionMaxPodGracePeriod).
	MaxPodGracePeriodSeconds int64
	// LocalStorageCapacityIsolation enforces emptyDir sizeLimit and
	// ephemeral-storage limits (localStorageCapacityIsolation).
	LocalStorageCapacityIsolation bool
	// KernelMemcgNotification: watch memory thresholds with the kernel's
	// cgroup notifications as well as at every housekeeping round.
	KernelMemcgNotification bool
}

// ParseConfig reads the eviction settings of a defaulted
// KubeletConfiguration as upstream's ParseThresholdConfig does: hard and
// soft thresholds (a soft one needs its grace period), minimum reclaims,
// and a hard memory.available threshold copied to
// allocatableMemory.available when enforceNodeAllocatable has "pods".
func ParseConfig(kc *kubeletconfig.KubeletConfiguration) (Config, error) {
	cfg := Config{
		PressureTransitionPeriod:      kc.EvictionPressureTransitionPeriod.Duration,
		MaxPodGracePeriodSeconds:      int64(kc.EvictionMaxPodGracePeriod),
		LocalStorageCapacityIsolation: kc.LocalStorageCapacityIsolation == nil || *kc.LocalStorageCapacityIsolation,
		KernelMemcgNotification:       true,
	}
	hard, err := parseStatements("evictionHard", kc.EvictionHard)
	if err != nil {
		return cfg, err
	}
	soft, err := parseStatements("evictionSoft", kc.EvictionSoft)
	if err != nil {
		return cfg, err
	}
	grace := map[Signal]time.Duration{}
	for _, k := range slices.Sorted(maps.Keys(kc.EvictionSoftGracePeriod)) {
		s := Signal(k)
		if _, ok := signalResource(s); !ok {
			return cfg, fmt.Errorf("evictionSoftGracePeriod: unsupported eviction signal %v", s)
		}
		d, err := time.ParseDuration(kc.EvictionSoftGracePeriod[k])
		if err != nil {
			return cfg, fmt.Errorf("evictionSoftGracePeriod %s: %w", k, err)
		}
		if d < 0 {
			return cfg, fmt.Errorf("evictionSoftGracePeriod %s: invalid eviction grace period specified: %v, must be a positive value", k, kc.EvictionSoftGracePeriod[k])
		}
		grace[s] = d
	}
	for i := range soft {
		d, ok := grace[soft[i].Signal]
		if !ok {
			return cfg, fmt.Errorf("evictionSoft: grace period must be specified for the soft eviction threshold %v", soft[i].Signal)
		}
		soft[i].GracePeriod = d
	}
	minReclaim := map[Signal]Value{}
	for _, k := range slices.Sorted(maps.Keys(kc.EvictionMinimumReclaim)) {
		s, val := Signal(k), kc.EvictionMinimumReclaim[k]
		if _, ok := signalResource(s); !ok {
			return cfg, fmt.Errorf("evictionMinimumReclaim: unsupported eviction signal %v", s)
		}
		if pct, ok := strings.CutSuffix(val, "%"); ok {
			p, err := parsePercentage(pct)
			if err != nil || p <= 0 {
				return cfg, fmt.Errorf("evictionMinimumReclaim %s: eviction percentage minimum reclaim must be positive: %s", k, val)
			}
			minReclaim[s] = Value{Percentage: p}
			continue
		}
		q, err := resource.ParseQuantity(val)
		if err != nil {
			return cfg, fmt.Errorf("evictionMinimumReclaim %s: %w", k, err)
		}
		if q.Sign() < 0 {
			return cfg, fmt.Errorf("evictionMinimumReclaim %s: negative eviction minimum reclaim specified", k)
		}
		minReclaim[s] = Value{Quantity: &q}
	}
	all := append(hard, soft...)
	for i := range all {
		if mr, ok := minReclaim[all[i].Signal]; ok {
			all[i].MinReclaim = &mr
		}
	}
	if slices.Contains(kc.EnforceNodeAllocatable, "pods") {
		for _, t := range all {
			if t.Signal == SignalMemoryAvailable && t.hard() {
				all = append(all, Threshold{Signal: SignalAllocatableMemoryAvailable, Value: t.Value, MinReclaim: t.MinReclaim})
			}
		}
	}
	// containerfs thresholds would repeat nodefs's or imagefs's (upstream
	// overrides them so): not kept.
	all = slices.DeleteFunc(all, func(t Threshold) bool {
		return t.Signal == SignalContainerFsAvailable || t.Signal == SignalContainerFsInodesFree
	})
	cfg.Thresholds = all
	return cfg, nil
}

// parseStatements parses evictionHard or evictionSoft, sorted by signal so
// that the order does not depend on the map's.
func parseStatements(field string, m map[string]string) ([]Threshold, error) {
	var out []Threshold
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s, val := Signal(k), m[k]
		if _, ok := signalResource(s); !ok {
			return nil, fmt.Errorf("%s: unsupported eviction signal %v", field, s)
		}
		if pct, ok := strings.CutSuffix(val, "%"); ok {
			if val == "0%" || val == "100%" {
				continue // upstream ignores both
			}
			p, err := parsePercentage(pct)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", field, k, err)
			}
			if p < 0 || p > 1 {
				return nil, fmt.Errorf("%s: eviction percentage threshold %v must be between 0%% and 100%%: %s", field, s, val)
			}
			out = append(out, Threshold{Signal: s, Value: Value{Percentage: p}})
			continue
		}
		q, err := resource.ParseQuantity(val)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", field, k, err)
		}
		if q.Sign() <= 0 {
			return nil, fmt.Errorf("%s: eviction threshold %v must be positive: %s", field, s, &q)
		}
		out = append(out, Threshold{Signal: s, Value: Value{Quantity: &q}})
	}
	return out, nil
}

func parsePercentage(s string) (float32, error) {
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		return 0, err
	}
	return float32(v) / 100, nil
}
