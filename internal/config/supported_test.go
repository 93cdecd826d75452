package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// Every supported path must name a real field, so a typo in the list
// cannot silently hide a field from the unsupported report; likewise every
// supported flag must be a flag.
func TestSupportedFieldsExist(t *testing.T) {
	for _, path := range supportedFields() {
		if !fieldExists(path) {
			t.Errorf("supported field %q does not exist", path)
		}
	}
	fs := FlagSet()
	for _, name := range supportedFlags() {
		if fs.Lookup(name) == nil {
			t.Errorf("supported flag --%s does not exist", name)
		}
	}
}

// fieldExists reports whether path names a KubeletConfiguration field;
// "featureGates.X" names a gate in a map and counts.
func fieldExists(path string) bool {
	typ := reflect.TypeFor[kubeletconfig.KubeletConfiguration]()
	for _, name := range strings.Split(path, ".") {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() == reflect.Map {
			return true
		}
		if typ.Kind() != reflect.Struct {
			return false
		}
		f, ok := jsonFields(typ)[name]
		if !ok {
			return false
		}
		typ = f.Type
	}
	return true
}

func TestUnsupported(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want []string
	}{
		{name: "nothing set", set: nil, want: nil},
		{name: "only supported", set: []string{"apiVersion", "kind", "staticPodPath", "maxPods", "logging.verbosity"}, want: nil},
		{
			name: "node registration and status fields",
			set: []string{"kubeAPIQPS", "kubeAPIBurst", "port", "registerWithTaints", "kubeReserved", "systemReserved",
				"evictionHard", "mergeDefaultEvictionSettings", "nodeStatusUpdateFrequency", "nodeStatusReportFrequency",
				"nodeLeaseDurationSeconds", "registerNode", "nodeStatusMaxImages"},
			want: []string{"nodeStatusMaxImages", "registerNode"},
		},
		{
			name: "server, log and stats fields",
			set: []string{"healthzBindAddress", "healthzPort", "tlsCertFile", "tlsPrivateKeyFile", "tlsMinVersion", "tlsCipherSuites",
				"authentication.anonymous.enabled", "authentication.webhook.cacheTTL", "authentication.x509.clientCAFile",
				"authorization.mode", "authorization.webhook.cacheAuthorizedTTL", "enableDebuggingHandlers", "enableSystemLogHandler",
				"enableProfilingHandler", "containerLogMaxSize", "containerLogMaxFiles", "containerLogMaxWorkers",
				"containerLogMonitorInterval", "volumeStatsAggPeriod", "kubeletCgroups", "systemCgroups",
				"tlsCurvePreferences", "enableDebugFlagsHandler", "enableSystemLogQuery", "cgroupRoot"},
			want: []string{"enableDebugFlagsHandler", "enableSystemLogQuery", "tlsCurvePreferences"},
		},
		{
			name: "nested and sorted, without duplicates",
			set:  []string{"staticPodPath", "topologyManagerPolicy", "crashLoopBackOff.maxContainerRestartPeriod", "logging.format", "topologyManagerPolicy"},
			want: []string{"crashLoopBackOff.maxContainerRestartPeriod", "topologyManagerPolicy"},
		},
		{
			// A supported name must match a whole path element.
			name: "prefix of a name is not a match",
			set:  []string{"addressExtra", "maxPodsPerCore"},
			want: []string{"addressExtra", "maxPodsPerCore"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unsupported(tt.set); !slices.Equal(got, tt.want) {
				t.Errorf("unsupported(%q) = %q, want %q", tt.set, got, tt.want)
			}
		})
	}
}
