package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	netutils "k8s.io/utils/net"
)

// The flag types upstream defines in its own packages, with the same
// type names, so that the flag sets compare equal and parse alike.

// ipValue is an IP address flag (upstream's IPVar, type "ip"): an empty
// value leaves the field alone.
type ipValue struct{ ip *string }

func (v ipValue) Type() string   { return "ip" }
func (v ipValue) String() string { return *v.ip }

func (v ipValue) Set(s string) error {
	if s == "" {
		return nil
	}
	if netutils.ParseIPSloppy(s) == nil {
		return fmt.Errorf("%q is not a valid IP address", s)
	}
	*v.ip = s
	return nil
}

// versionValue is --version: true, false or raw.
type versionValue string

const (
	versionFalse versionValue = "false"
	versionTrue  versionValue = "true"
	versionRaw   versionValue = "raw"
)

func (v *versionValue) Type() string   { return "version" }
func (v *versionValue) String() string { return string(*v) }

func (v *versionValue) Set(s string) error {
	if s == string(versionRaw) {
		*v = versionRaw
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true, false or raw, got %q", s)
	}
	*v = versionFalse
	if b {
		*v = versionTrue
	}
	return nil
}

// taintsValue is --register-with-taints: comma-separated
// "<key>[=<value>]:<effect>", parsed as upstream's ParseTaints does. A
// repeated flag replaces the earlier list, as upstream.
type taintsValue struct{ taints *[]v1.Taint }

func (t taintsValue) Type() string { return "[]v1.Taint" }

func (t taintsValue) String() string {
	specs := make([]string, len(*t.taints))
	for i, taint := range *t.taints {
		specs[i] = fmt.Sprintf("%s=%s:%s", taint.Key, taint.Value, taint.Effect)
	}
	return strings.Join(specs, ",")
}

func (t taintsValue) Set(s string) error {
	if s == "" {
		*t.taints = nil
		return nil
	}
	var taints []v1.Taint
	for _, spec := range strings.Split(s, ",") {
		taint, err := parseTaint(spec)
		if err != nil {
			return err
		}
		taints = append(taints, taint)
	}
	*t.taints = taints
	return nil
}

// reservedMemoryValue is --reserved-memory:
// "<numa node>:<type>=<quantity>[,<type>=<quantity>...]", reservations of
// several nodes separated by ';' or given in repeated flags, which add up
// (upstream's ReservedMemoryVar). The first use replaces the file's list.
type reservedMemoryValue struct {
	list *[]kubeletconfig.MemoryReservation
	used bool
}

func (v *reservedMemoryValue) Type() string { return "reserved-memory" }

func (v *reservedMemoryValue) String() string {
	var out []string
	for _, r := range *v.list {
		var limits []string
		for name, q := range r.Limits {
			limits = append(limits, fmt.Sprintf("%s=%s", name, q.String()))
		}
		slices.Sort(limits)
		out = append(out, fmt.Sprintf("%d:%s", r.NumaNode, strings.Join(limits, ",")))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (v *reservedMemoryValue) Set(s string) error {
	if s == "" {
		return nil
	}
	if !v.used {
		*v.list = nil
		v.used = true
	}
	for _, spec := range strings.Split(s, ";") {
		node, limits, ok := strings.Cut(spec, ":")
		if !ok || strings.Contains(limits, ":") {
			return fmt.Errorf("reserved memory %q: want <numa node>:<type>=<quantity>[,<type>=<quantity>...]", spec)
		}
		id, err := strconv.ParseInt(node, 10, 32)
		if err != nil {
			return fmt.Errorf("reserved memory %q: NUMA node %q is not a number", spec, node)
		}
		r := kubeletconfig.MemoryReservation{NumaNode: int32(id), Limits: v1.ResourceList{}}
		for _, l := range strings.Split(limits, ",") {
			name, qty, ok := strings.Cut(l, "=")
			if !ok || strings.Contains(qty, "=") {
				return fmt.Errorf("reserved memory %q: want <type>=<quantity>, got %q", spec, l)
			}
			if name != string(v1.ResourceMemory) && !strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
				return fmt.Errorf("reserved memory %q: unknown memory type %q, want memory or hugepages-<size>", spec, name)
			}
			q, err := resource.ParseQuantity(qty)
			if err != nil {
				return fmt.Errorf("reserved memory %q: quantity %q: %w", spec, qty, err)
			}
			r.Limits[v1.ResourceName(name)] = q
		}
		*v.list = append(*v.list, r)
	}
	return nil
}
