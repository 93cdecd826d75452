package config

import (
	"fmt"
	"maps"
	"slices"
)

// GateSpec is what upstream's feature gate knows of a gate at v1.37.
type GateSpec struct {
	Default bool   // enabled by default
	Locked  bool   // may not be set to anything but Default
	Stage   string // ALPHA, BETA, GA or DEPRECATED
}

const (
	stageAlpha      = "ALPHA"
	stageBeta       = "BETA"
	stageGA         = "GA"
	stageDeprecated = "DEPRECATED"
)

// KnownFeatureGates returns the feature gates --feature-gates and
// featureGates accept, by name: upstream's at v1.37.
func KnownFeatureGates() map[string]GateSpec { return knownFeatureGates() }

// featureEnabled reports whether the gate name is on in gates, its
// upstream default when gates leaves it out.
func featureEnabled(gates map[string]bool, name string) bool {
	if v, ok := gates[name]; ok {
		return v
	}
	return knownFeatureGates()[name].Default
}

// checkFeatureGates validates featureGates as upstream's SetFromMap does:
// an unknown name, or a locked gate set to anything but its default, is an
// error (upstream's messages); setting a GA or deprecated gate is a
// warning. Upstream also checks dependencies between gates; berth, which
// acts on no gate, does not.
func checkFeatureGates(gates map[string]bool) ([]Warning, []error) {
	known := knownFeatureGates()
	var warns []Warning
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(gates)) {
		v := gates[name]
		spec, ok := known[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("featureGates (--feature-gates): unrecognized feature gate: %s", name))
		case spec.Locked && v != spec.Default:
			errs = append(errs, fmt.Errorf("featureGates (--feature-gates): cannot set feature gate %s to %v, feature is locked to %v", name, v, spec.Default))
		case spec.Stage == stageDeprecated:
			warns = append(warns, Warning{Msg: "Warning: setting deprecated feature gate. It will be removed in a future release.", KeysAndValues: []any{"featureGate", name, "value", v}})
		case spec.Stage == stageGA:
			warns = append(warns, Warning{Msg: "Warning: setting GA feature gate. It will be removed in a future release.", KeysAndValues: []any{"featureGate", name, "value", v}})
		}
	}
	return warns, errs
}
