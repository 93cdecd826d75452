package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	kubeletapis "k8s.io/kubelet/pkg/apis"
)

// This file holds what Parse needs for registering the node: node labels,
// taints, resource reservations and the hard eviction thresholds that are
// held back from allocatable.

// defaultEvictionHard is upstream's DefaultEvictionHard on Linux
// (pkg/kubelet/eviction/defaults_linux.go). A function, so that no caller
// can change a shared map.
func defaultEvictionHard() map[string]string {
	return map[string]string{
		"memory.available":   "100Mi",
		"nodefs.available":   "10%",
		"nodefs.inodesFree":  "5%",
		"imagefs.available":  "15%",
		"imagefs.inodesFree": "5%",
	}
}

// applyEvictionDefaults gives evictionHard upstream's default when neither
// the file nor a flag set it, or fills in the missing signals when
// mergeDefaultEvictionSettings asks for it. Upstream does this after
// loading the file rather than in SetDefaults (the default is OS-specific),
// so SetDefaults leaves the field alone too; the merged configuration
// shows the thresholds in force.
func applyEvictionDefaults(cfg *kubeletconfig.KubeletConfiguration) {
	if cfg.EvictionHard == nil {
		cfg.EvictionHard = defaultEvictionHard()
		return
	}
	if cfg.MergeDefaultEvictionSettings != nil && *cfg.MergeDefaultEvictionSettings {
		for k, v := range defaultEvictionHard() {
			if _, ok := cfg.EvictionHard[k]; !ok {
				cfg.EvictionHard[k] = v
			}
		}
	}
}

// evictionSignals are the signals upstream's eviction manager knows on
// Linux (pkg/kubelet/eviction/api).
var evictionSignals = []string{
	"memory.available",
	"allocatableMemory.available",
	"nodefs.available",
	"nodefs.inodesFree",
	"imagefs.available",
	"imagefs.inodesFree",
	"containerfs.available",
	"containerfs.inodesFree",
	"pid.available",
}

// validateEvictionHard checks each threshold as upstream's
// parseThresholdStatement does: a known signal, and either a percentage
// between 0% and 100% or a positive quantity.
func validateEvictionHard(m map[string]string) []error {
	var errs []error
	for _, signal := range slices.Sorted(maps.Keys(m)) {
		val := m[signal]
		if !slices.Contains(evictionSignals, signal) {
			errs = append(errs, fmt.Errorf("evictionHard (--eviction-hard): unknown signal %q, want one of %s", signal, strings.Join(evictionSignals, ", ")))
			continue
		}
		if pct, ok := strings.CutSuffix(val, "%"); ok {
			f, err := strconv.ParseFloat(pct, 32)
			if err != nil || f < 0 || f > 100 {
				errs = append(errs, fmt.Errorf("evictionHard (--eviction-hard) %s: %q must be a percentage between 0%% and 100%%", signal, val))
			}
			continue
		}
		q, err := resource.ParseQuantity(val)
		if err != nil {
			errs = append(errs, fmt.Errorf("evictionHard (--eviction-hard) %s: %q is neither a quantity nor a percentage", signal, val))
			continue
		}
		if q.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("evictionHard (--eviction-hard) %s: %q must be positive", signal, val))
		}
	}
	return errs
}

// parseResourceList turns kubeReserved or systemReserved into a resource
// list as upstream's parseResourceList does: only cpu, memory,
// ephemeral-storage and pid may be reserved, quantities must not be
// negative, and cpu is rounded to millicores. An empty map gives nil.
func parseResourceList(field string, m map[string]string) (v1.ResourceList, error) {
	if len(m) == 0 {
		return nil, nil
	}
	rl := v1.ResourceList{}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch v1.ResourceName(k) {
		case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, "pid":
		default:
			errs = append(errs, fmt.Errorf("%s: cannot reserve %q, only cpu, memory, ephemeral-storage and pid", field, k))
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: quantity %q for %q: %w", field, v, k, err))
			continue
		}
		if q.Sign() < 0 {
			errs = append(errs, fmt.Errorf("%s: quantity for %q must not be negative, got %s", field, k, v))
			continue
		}
		if k == string(v1.ResourceCPU) {
			q.SetMilli((q.ScaledValue(resource.Micro) + 500) / 1000)
		}
		rl[v1.ResourceName(k)] = q
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return rl, nil
}

// validateNodeLabels checks --node-labels as upstream's
// ValidateKubeletFlags does: keys and values must be valid labels, and a
// key in the kubernetes.io or k8s.io namespaces must be one a kubelet may
// set on its own Node (the NodeRestriction admission plugin rejects the
// others, node-restriction.kubernetes.io/ among them).
func validateNodeLabels(labels map[string]string) []error {
	var errs, invalid []error
	var forbidden []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if isKubernetesLabel(k) && !kubeletapis.IsKubeletLabel(k) {
			forbidden = append(forbidden, k)
		}
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			invalid = append(invalid, fmt.Errorf("key %q: %s", k, strings.Join(msgs, ", ")))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			invalid = append(invalid, fmt.Errorf("value %q of %q: %s", v, k, strings.Join(msgs, ", ")))
		}
	}
	if len(forbidden) > 0 {
		errs = append(errs, fmt.Errorf("--node-labels: a node may not set %s: labels in the kubernetes.io and k8s.io namespaces must begin with an allowed prefix (%s) or be one of %s",
			strings.Join(forbidden, ", "), strings.Join(kubeletapis.KubeletLabelNamespaces(), ", "), kubeletLabelsHelp()))
	}
	for _, err := range invalid {
		errs = append(errs, fmt.Errorf("--node-labels: invalid label %w", err))
	}
	return errs
}

// kubeletLabelsHelp lists the kubernetes.io labels a kubelet may set.
func kubeletLabelsHelp() string {
	return strings.Join(kubeletapis.KubeletLabels(), ", ") + " or keys under " + strings.Join(kubeletapis.KubeletLabelNamespaces(), ", ")
}

// isKubernetesLabel reports whether key is in the kubernetes.io or k8s.io
// namespaces, sub-domains included.
func isKubernetesLabel(key string) bool {
	ns, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	return ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") ||
		ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")
}

// validateTaints checks registerWithTaints. Upstream's check (key and value
// valid, a known effect, no timeAdded) lets a taint without an effect or a
// duplicate key and effect through, which the API server then rejects on
// every registration attempt; berth refuses them at start-up instead.
func validateTaints(taints []v1.Taint) []error {
	var errs []error
	seen := map[string]bool{}
	for i, t := range taints {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("registerWithTaints[%d] (--register-with-taints): %s", i, fmt.Sprintf(format, args...)))
		}
		if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
			bad("invalid key %q: %s", t.Key, strings.Join(msgs, ", "))
		}
		if t.Value != "" {
			if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
				bad("invalid value %q: %s", t.Value, strings.Join(msgs, ", "))
			}
		}
		if err := checkTaintEffect(t.Effect); err != nil {
			bad("%v", err)
		}
		if t.TimeAdded != nil {
			bad("timeAdded must not be set")
		}
		id := t.Key + ":" + string(t.Effect)
		if seen[id] {
			bad("duplicate taint %s", id)
		}
		seen[id] = true
	}
	return errs
}

func checkTaintEffect(e v1.TaintEffect) error {
	switch e {
	case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		return nil
	case "":
		return errors.New("effect is required (NoSchedule, PreferNoSchedule or NoExecute)")
	}
	return fmt.Errorf("unknown effect %q, want NoSchedule, PreferNoSchedule or NoExecute", e)
}

// parseTaint parses "<key>[=<value>]:<effect>".
func parseTaint(spec string) (v1.Taint, error) {
	kv, effect, ok := strings.Cut(spec, ":")
	if !ok || strings.Contains(effect, ":") {
		return v1.Taint{}, fmt.Errorf("invalid taint %q, want <key>=<value>:<effect>", spec)
	}
	key, value, _ := strings.Cut(kv, "=")
	if strings.Contains(value, "=") {
		return v1.Taint{}, fmt.Errorf("invalid taint %q, want <key>=<value>:<effect>", spec)
	}
	if msgs := validation.IsQualifiedName(key); len(msgs) > 0 {
		return v1.Taint{}, fmt.Errorf("invalid taint %q: key: %s", spec, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsValidLabelValue(value); len(msgs) > 0 {
		return v1.Taint{}, fmt.Errorf("invalid taint %q: value: %s", spec, strings.Join(msgs, "; "))
	}
	if err := checkTaintEffect(v1.TaintEffect(effect)); err != nil {
		return v1.Taint{}, fmt.Errorf("invalid taint %q: %w", spec, err)
	}
	return v1.Taint{Key: key, Value: value, Effect: v1.TaintEffect(effect)}, nil
}
