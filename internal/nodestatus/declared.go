package nodestatus

import (
	ndf "k8s.io/component-helpers/nodedeclaredfeatures"
	"k8s.io/component-helpers/nodedeclaredfeatures/features/inplacepodresize"
	ndftypes "k8s.io/component-helpers/nodedeclaredfeatures/types"
)

// implementedFeatures are the node-declared features (KEP-5328) berth
// implements: only these may be declared, whatever gates are on, since
// the API server and the scheduler trust the declaration (a resize of
// pod-level resources is refused for a node that does not declare it, and
// allowed for one that does).
func implementedFeatures() []ndftypes.Feature {
	return []ndftypes.Feature{inplacepodresize.PodLevelResourcesResizeFeature}
}

// DeclaredFeatures are the features the node declares in
// status.declaredFeatures, by upstream's discovery rules over those berth
// implements; enabled tells whether a feature gate is on.
func DeclaredFeatures(enabled func(gate string) bool) []string {
	if !enabled("NodeDeclaredFeatures") {
		return nil
	}
	cfg := &ndftypes.NodeConfiguration{FeatureGates: gateFunc(enabled)}
	return ndf.New(implementedFeatures()).DiscoverNodeFeatures(cfg)
}

type gateFunc func(string) bool

func (f gateFunc) Enabled(key string) bool { return f(key) }
