package compare

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	upstream "k8s.io/kubernetes/pkg/kubelet/apis/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/config"
)

// TestKubeletConfigurationDefaults: the configuration berth runs with (and
// /configz shows) for a file that sets some fields, against upstream's
// SetDefaults_KubeletConfiguration with its v1.37 feature gate defaults.
func TestKubeletConfigurationDefaults(t *testing.T) {
	d := func(x time.Duration) metav1.Duration { return metav1.Duration{Duration: x} }
	tests := []struct {
		name string
		cfg  kubeletconfig.KubeletConfiguration
	}{
		{"empty", kubeletconfig.KubeletConfiguration{}},
		{"update frequency set: report frequency follows it", kubeletconfig.KubeletConfiguration{NodeStatusUpdateFrequency: d(20 * time.Second)}},
		{"both frequencies set", kubeletconfig.KubeletConfiguration{NodeStatusUpdateFrequency: d(20 * time.Second), NodeStatusReportFrequency: d(time.Minute)}},
		{"parallel pulls imply no serialized pulls", kubeletconfig.KubeletConfiguration{MaxParallelImagePulls: ptr.To[int32](5)}},
		{"one parallel pull", kubeletconfig.KubeletConfiguration{MaxParallelImagePulls: ptr.To[int32](1)}},
		{"parallel pulls with serialized pulls", kubeletconfig.KubeletConfiguration{MaxParallelImagePulls: ptr.To[int32](5), SerializeImagePulls: ptr.To(true)}},
		{"negative pids limit", kubeletconfig.KubeletConfiguration{PodPidsLimit: ptr.To[int64](-5)}},
		{"pids limit", kubeletconfig.KubeletConfiguration{PodPidsLimit: ptr.To[int64](1024)}},
		{"explicit zeros and falses stay", kubeletconfig.KubeletConfiguration{
			HealthzPort: ptr.To[int32](0), RegistryPullQPS: ptr.To[int32](0), EventRecordQPS: ptr.To[int32](0),
			KubeAPIQPS: ptr.To[int32](0), EnableServer: ptr.To(false), CgroupsPerQOS: ptr.To(false),
			ImageGCHighThresholdPercent: ptr.To[int32](100), ImageGCLowThresholdPercent: ptr.To[int32](0),
			ResolverConfig: ptr.To(""), EnforceNodeAllocatable: []string{}, FailSwapOn: ptr.To(false),
			NodeStatusMaxImages: ptr.To[int32](0), OOMScoreAdj: ptr.To[int32](0), ContainerLogMaxFiles: ptr.To[int32](2),
		}},
		{"values set", kubeletconfig.KubeletConfiguration{
			SyncFrequency: d(30 * time.Second), Address: "127.0.0.1", Port: 10260, MaxPods: 250,
			CgroupDriver: "systemd", ContainerRuntimeEndpoint: "unix:///run/crio/crio.sock",
			ContainerLogMaxSize: "50Mi", StaticPodPath: "/etc/kubernetes/manifests", ReadOnlyPort: 10255,
			Authorization: kubeletconfig.KubeletAuthorization{Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow},
			EvictionHard:  map[string]string{"memory.available": "100Mi"},
		}},
		{"crash loop back-off set", kubeletconfig.KubeletConfiguration{
			CrashLoopBackOff: kubeletconfig.CrashLoopBackOffConfig{MaxContainerRestartPeriod: ptr.To(d(time.Minute))},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.cfg.DeepCopy()
			upstream.SetDefaults_KubeletConfiguration(want)
			got := tt.cfg.DeepCopy()
			config.SetDefaults(got)
			gj, wj := marshal(t, got), marshal(t, want)
			if gj != wj {
				t.Errorf("berth's defaults differ from upstream's:\n%s", diffLines(gj, wj))
			}
		})
	}
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
