package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite testdata/defaults.golden.json")

// TestSetDefaultsGolden pins the complete defaulted configuration, which is
// what /configz shows for an empty file. Run with -update after a deliberate
// change and review the diff.
func TestSetDefaultsGolden(t *testing.T) {
	cfg := &kubeletconfig.KubeletConfiguration{}
	SetDefaults(cfg)
	got, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "defaults.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("defaults differ from %s (rerun with -update if intended):\n%s", golden, got)
	}
}

func TestSetDefaults(t *testing.T) {
	cfg := &kubeletconfig.KubeletConfiguration{}
	SetDefaults(cfg)
	tests := []struct {
		field     string
		got, want any
	}{
		{"syncFrequency", cfg.SyncFrequency.Duration, time.Minute},
		{"fileCheckFrequency", cfg.FileCheckFrequency.Duration, 20 * time.Second},
		{"readOnlyPort", cfg.ReadOnlyPort, int32(0)}, // upstream file default; Parse decides standalone
		{"address", cfg.Address, "0.0.0.0"},
		{"port", cfg.Port, int32(10250)},
		{"healthzPort", *cfg.HealthzPort, int32(10248)},
		{"containerRuntimeEndpoint", cfg.ContainerRuntimeEndpoint, "unix:///run/containerd/containerd.sock"},
		{"imageServiceEndpoint", cfg.ImageServiceEndpoint, ""},
		{"runtimeRequestTimeout", cfg.RuntimeRequestTimeout.Duration, 2 * time.Minute},
		{"cgroupDriver", cfg.CgroupDriver, "cgroupfs"},
		{"serializeImagePulls", *cfg.SerializeImagePulls, true},
		{"maxParallelImagePulls", cfg.MaxParallelImagePulls, (*int32)(nil)},
		{"podLogsDir", cfg.PodLogsDir, "/var/log/pods"},
		{"resolvConf", *cfg.ResolverConfig, "/etc/resolv.conf"},
		{"clusterDomain", cfg.ClusterDomain, ""},
		{"maxPods", cfg.MaxPods, int32(110)},
		{"nodeStatusReportFrequency", cfg.NodeStatusReportFrequency.Duration, 5 * time.Minute},
		{"logging.format", cfg.Logging.Format, "text"},
		{"healthzBindAddress", cfg.HealthzBindAddress, "127.0.0.1"},
		{"authentication.anonymous.enabled", *cfg.Authentication.Anonymous.Enabled, false},
		{"authentication.webhook.enabled", *cfg.Authentication.Webhook.Enabled, true}, // upstream; Parse turns it off standalone
		{"authentication.webhook.cacheTTL", cfg.Authentication.Webhook.CacheTTL.Duration, 2 * time.Minute},
		{"authorization.mode", cfg.Authorization.Mode, kubeletconfig.KubeletAuthorizationModeWebhook},
		{"authorization.webhook.cacheAuthorizedTTL", cfg.Authorization.Webhook.CacheAuthorizedTTL.Duration, 5 * time.Minute},
		{"authorization.webhook.cacheUnauthorizedTTL", cfg.Authorization.Webhook.CacheUnauthorizedTTL.Duration, 30 * time.Second},
		{"enableDebuggingHandlers", *cfg.EnableDebuggingHandlers, true},
		{"enableSystemLogHandler", *cfg.EnableSystemLogHandler, true},
		{"enableProfilingHandler", *cfg.EnableProfilingHandler, true},
		{"containerLogMaxSize", cfg.ContainerLogMaxSize, "10Mi"},
		{"containerLogMaxFiles", *cfg.ContainerLogMaxFiles, int32(5)},
		{"containerLogMaxWorkers", *cfg.ContainerLogMaxWorkers, int32(1)},
		{"containerLogMonitorInterval", cfg.ContainerLogMonitorInterval.Duration, 10 * time.Second},
		{"volumeStatsAggPeriod", cfg.VolumeStatsAggPeriod.Duration, time.Minute},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

func TestSetDefaultsKeepsSetValues(t *testing.T) {
	tests := []struct {
		name  string
		in    kubeletconfig.KubeletConfiguration
		check func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration)
	}{
		{
			name: "set values survive",
			in: kubeletconfig.KubeletConfiguration{
				SyncFrequency:  metav1.Duration{Duration: 5 * time.Second},
				CgroupDriver:   "systemd",
				ResolverConfig: ptr.To(""),
				HealthzPort:    ptr.To[int32](0),
			},
			check: func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration) {
				if cfg.SyncFrequency.Duration != 5*time.Second || cfg.CgroupDriver != "systemd" {
					t.Errorf("syncFrequency %v cgroupDriver %q", cfg.SyncFrequency.Duration, cfg.CgroupDriver)
				}
				if *cfg.ResolverConfig != "" {
					t.Errorf("explicit empty resolvConf replaced by %q", *cfg.ResolverConfig)
				}
				if *cfg.HealthzPort != 0 {
					t.Errorf("explicit healthzPort 0 replaced by %d", *cfg.HealthzPort)
				}
			},
		},
		{
			name: "maxParallelImagePulls > 1 implies parallel pulls",
			in:   kubeletconfig.KubeletConfiguration{MaxParallelImagePulls: ptr.To[int32](4)},
			check: func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration) {
				if *cfg.SerializeImagePulls {
					t.Error("serializeImagePulls = true, want false")
				}
			},
		},
		{
			name: "maxParallelImagePulls 1 keeps serial pulls",
			in:   kubeletconfig.KubeletConfiguration{MaxParallelImagePulls: ptr.To[int32](1)},
			check: func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration) {
				if !*cfg.SerializeImagePulls {
					t.Error("serializeImagePulls = false, want true")
				}
			},
		},
		{
			name: "nodeStatusReportFrequency follows a set update frequency",
			in:   kubeletconfig.KubeletConfiguration{NodeStatusUpdateFrequency: metav1.Duration{Duration: 20 * time.Second}},
			check: func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration) {
				if cfg.NodeStatusReportFrequency.Duration != 20*time.Second {
					t.Errorf("nodeStatusReportFrequency = %v", cfg.NodeStatusReportFrequency.Duration)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.in
			SetDefaults(&cfg)
			tt.check(t, &cfg)
		})
	}
}
