package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

func TestLoadFile(t *testing.T) {
	tests := []struct {
		file    string
		wantErr []string // substrings, all required; empty means success
		wantSet []string
		check   func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration)
	}{
		{
			file: "good.yaml",
			wantSet: []string{"address", "apiVersion", "cgroupDriver", "clusterDNS", "clusterDomain",
				"containerRuntimeEndpoint", "fileCheckFrequency", "imageServiceEndpoint", "kind",
				"maxParallelImagePulls", "maxPods", "podLogsDir", "readOnlyPort", "resolvConf",
				"runtimeRequestTimeout", "serializeImagePulls", "staticPodPath", "syncFrequency"},
			check: func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration) {
				if got, want := cfg.StaticPodPath, filepath.Join("testdata", "manifests"); got != want {
					t.Errorf("relative staticPodPath: got %q, want %q (relative to the file)", got, want)
				}
				if cfg.SyncFrequency.Duration != 30*time.Second {
					t.Errorf("syncFrequency = %v", cfg.SyncFrequency.Duration)
				}
				if cfg.MaxParallelImagePulls == nil || *cfg.MaxParallelImagePulls != 3 {
					t.Errorf("maxParallelImagePulls = %v", cfg.MaxParallelImagePulls)
				}
				if cfg.CgroupDriver != "systemd" || cfg.MaxPods != 50 || cfg.ReadOnlyPort != 10256 {
					t.Errorf("got cgroupDriver %q maxPods %d readOnlyPort %d", cfg.CgroupDriver, cfg.MaxPods, cfg.ReadOnlyPort)
				}
				if cfg.HealthzPort != nil {
					t.Errorf("LoadFile must not default: healthzPort = %d", *cfg.HealthzPort)
				}
			},
		},
		{
			file:    "good.json",
			wantSet: []string{"apiVersion", "clusterDNS", "kind", "maxPods", "resolvConf", "syncFrequency"},
			check: func(t *testing.T, cfg *kubeletconfig.KubeletConfiguration) {
				if cfg.SyncFrequency.Duration != 45*time.Second || cfg.MaxPods != 20 {
					t.Errorf("syncFrequency %v maxPods %d", cfg.SyncFrequency.Duration, cfg.MaxPods)
				}
				if !slices.Equal(cfg.ClusterDNS, []string{"10.0.0.10", "fd00::10"}) {
					t.Errorf("clusterDNS = %v", cfg.ClusterDNS)
				}
				if cfg.ResolverConfig == nil || *cfg.ResolverConfig != "" {
					t.Errorf("resolvConf: want explicit empty string, got %v", cfg.ResolverConfig)
				}
			},
		},
		{
			file: "unsupported.yaml",
			wantSet: []string{"apiVersion", "authentication.anonymous.enabled", "authentication.webhook.cacheTTL",
				"authentication.webhook.enabled", "authentication.x509.clientCAFile", "authorization.mode",
				"evictionHard", "failSwapOn", "featureGates", "kind", "logging.format", "logging.verbosity",
				"registerWithTaints", "staticPodPath"},
		},
		{
			file:    "unknown-field.yaml",
			wantErr: []string{"unknown-field.yaml", `field "authentication.webhook.enabeld": unknown field`, `field "podManifestPath": unknown field`},
		},
		{
			// encoding/json would accept this; upstream's strict decoder does not.
			file:    "wrong-case.yaml",
			wantErr: []string{`field "SyncFrequency": unknown field`},
		},
		{
			file:    "wrong-kind.yaml",
			wantErr: []string{"wrong-kind.yaml", `field "kind": "KubeProxyConfiguration" is not supported, want "KubeletConfiguration"`},
		},
		{
			file:    "wrong-apiversion.yaml",
			wantErr: []string{`field "apiVersion": "kubelet.config.k8s.io/v1" is not supported, want "kubelet.config.k8s.io/v1beta1"`},
		},
		{
			file:    "missing-kind.yaml",
			wantErr: []string{`field "kind" is missing`},
		},
		{
			file:    "bad-duration.yaml",
			wantErr: []string{"bad-duration.yaml", `field "syncFrequency"`, `"often"`, `field "authorization.webhook.cacheAuthorizedTTL"`},
		},
		{
			file:    "bad-type.yaml",
			wantErr: []string{`field "maxPods": cannot use string as int32`, `field "readOnlyPort": cannot use number 99999999999 as int32`},
		},
		{
			file:    "duplicate-key.yaml",
			wantErr: []string{"duplicate-key.yaml", "maxPods"},
		},
		{
			file:    "empty.yaml",
			wantErr: []string{"empty.yaml", "file is empty"},
		},
		{
			file:    "does-not-exist.yaml",
			wantErr: []string{"read config file", "does-not-exist.yaml", "no such file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, set, err := LoadFile(filepath.Join("testdata", tt.file))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got none", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(set)
			if !slices.Equal(set, tt.wantSet) {
				t.Errorf("set fields:\n got %q\nwant %q", set, tt.wantSet)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestDecodeNotAnObject(t *testing.T) {
	for _, doc := range []string{"- a\n- b\n", "42", `"text"`} {
		if _, _, err := Decode([]byte(doc)); err == nil || !strings.Contains(err.Error(), "want a KubeletConfiguration object") {
			t.Errorf("Decode(%q): got %v, want a 'want a KubeletConfiguration object' error", doc, err)
		}
	}
}

func TestDecodeNullIsUnset(t *testing.T) {
	doc := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHard:\nstaticPodPath: null\n"
	_, set, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"apiVersion", "kind"}; !slices.Equal(set, want) {
		t.Errorf("set = %q, want %q", set, want)
	}
}
