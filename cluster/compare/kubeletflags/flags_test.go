// Package kubeletflags compares berth's command line and feature gates with
// the upstream kubelet's. It is a package of its own so that its test
// binary links what the kubelet links and nothing else: feature gates are
// registered by the packages a binary imports.
package kubeletflags

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/spf13/pflag"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	_ "k8s.io/component-base/logs/json/register" // cmd/kubelet links the JSON log format, which adds its flags
	_ "k8s.io/kubernetes/cmd/kubelet/app"        // registers the kubelet's feature gates, as the kubelet binary does
	"k8s.io/kubernetes/cmd/kubelet/app/options"

	"github.com/berth-dev/berth/internal/config"
)

// upstreamFlagSet builds the upstream kubelet's command line as
// NewKubeletCommand (cmd/kubelet/app/server.go) does.
func upstreamFlagSet(t *testing.T) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	cfg, err := options.NewKubeletConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	options.NewKubeletFlags().AddFlags(fs)
	options.AddKubeletConfigFlags(fs, cfg)
	options.AddGlobalFlags(fs)
	fs.BoolP("help", "h", false, "help")
	return fs
}

// flagShape is what makes two flags accept the same command lines: the
// name, the shorthand, the value type, whether the value is optional, and
// whether the flag is deprecated (which prints a notice when used).
func flagShape(f *pflag.Flag) string {
	return fmt.Sprintf("-%s type=%s noOptDefVal=%q deprecated=%v", f.Shorthand, f.Value.Type(), f.NoOptDefVal, f.Deprecated != "")
}

func flagShapes(fs *pflag.FlagSet) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { m[f.Name] = flagShape(f) })
	return m
}

// TestFlagSet: berth accepts exactly the upstream kubelet's flags, each
// with the same shorthand, type, optional value and deprecation, plus its
// own (config.BerthFlags); a flag upstream adds or drops fails here.
func TestFlagSet(t *testing.T) {
	want := flagShapes(upstreamFlagSet(t))
	got := flagShapes(config.FlagSet())
	// berth's own settings, documented as such, are the only extras.
	for _, name := range config.BerthFlags() {
		if _, ok := got[name]; !ok {
			t.Errorf("berth's own flag --%s is missing", name)
		}
		delete(got, name)
	}
	compareSets(t, "--", want, got)
	if len(want) < 100 {
		t.Errorf("upstream's flag set has only %d flags: built wrong?", len(want))
	}
}

// TestFeatureGates: the gates berth accepts are upstream's, with the same
// defaults, locks and stages at v1.37.
func TestFeatureGates(t *testing.T) {
	up := utilfeature.DefaultMutableFeatureGate.GetAll()
	want := map[string]config.GateSpec{}
	for name, spec := range up {
		stage := string(spec.PreRelease)
		if spec.PreRelease == featuregate.GA {
			stage = "GA"
		}
		want[string(name)] = config.GateSpec{Default: spec.Default, Locked: spec.LockToDefault, Stage: stage}
	}
	compareSets(t, "feature gate ", want, config.KnownFeatureGates())
	if len(want) < 100 {
		t.Errorf("upstream knows only %d feature gates: registered wrong?", len(want))
	}
}

// compareSets reports every name that upstream (want) and berth (got)
// do not both have with the same value.
func compareSets[V comparable](t *testing.T, prefix string, want, got map[string]V) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s%s: upstream has it (%v), berth does not", prefix, name, want[name])
		case g != want[name]:
			t.Errorf("%s%s: berth %v, upstream %v", prefix, name, g, want[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			t.Errorf("%s%s: berth has it (%v), upstream does not", prefix, name, got[name])
		}
	}
}
