package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/internal/app"
)

func testEnv() Env {
	return Env{
		Hostname: func() (string, error) { return " Node-1.Example ", nil },
		SwapOn:   func() (bool, error) { return false, nil },
	}
}

// defaultOptions is what Parse gives with no flags at all.
func defaultOptions() app.Options {
	return app.Options{
		NodeName:              "node-1.example",
		RootDir:               "/var/lib/kubelet",
		PodLogsDir:            "/var/log/pods",
		FileCheckFrequency:    20 * time.Second,
		HTTPCheckFrequency:    20 * time.Second,
		SyncFrequency:         time.Minute,
		RuntimeEndpoint:       "unix:///run/containerd/containerd.sock",
		ImageEndpoint:         "unix:///run/containerd/containerd.sock",
		RuntimeRequestTimeout: 2 * time.Minute,
		CgroupDriver:          "cgroupfs",
		MaxParallelImagePulls: 1,
		ResolvConf:            "/etc/resolv.conf",

		ImagePullCredentialsVerificationPolicy:      "NeverVerifyPreloadedImages",
		ImageCredentialProviderServiceAccountTokens: true,
		DeclaredFeatures:        []string{"InPlacePodLevelResourcesVerticalScaling"},
		UserNamespacesIDsPerPod: 65536,
		ReadOnlyAddress:         "127.0.0.1",
		ReadOnlyPort:            10255,

		Address:            "127.0.0.1",
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        10248,
		CertDir:            "/var/lib/kubelet/pki",
		// Standalone: no webhooks, so only client certificates get in.
		Authentication: kubeletconfig.KubeletAuthentication{
			Webhook:   kubeletconfig.KubeletWebhookAuthentication{Enabled: ptr.To(false), CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			Anonymous: kubeletconfig.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
		Authorization: kubeletconfig.KubeletAuthorization{
			Mode: kubeletconfig.KubeletAuthorizationModeAlwaysAllow,
			Webhook: kubeletconfig.KubeletWebhookAuthorization{
				CacheAuthorizedTTL:   metav1.Duration{Duration: 5 * time.Minute},
				CacheUnauthorizedTTL: metav1.Duration{Duration: 30 * time.Second},
			},
		},
		EnableDebuggingHandlers:       true,
		EnableSystemLogHandler:        true,
		EnableProfilingHandler:        true,
		ContainerLogMaxSize:           10 << 20,
		ContainerLogMaxFiles:          5,
		ContainerLogMaxWorkers:        1,
		ContainerLogMonitorInterval:   10 * time.Second,
		HousekeepingInterval:          10 * time.Second,
		MaxDeadContainersPerContainer: 1,
		VolumeStatsAggPeriod:          time.Minute,

		KubeAPIQPS:     50,
		KubeAPIBurst:   100,
		EventRecordQPS: 50,
		EventBurst:     100,
		MaxPods:        110,
		EvictionHard: map[string]string{
			"memory.available":   "100Mi",
			"nodefs.available":   "10%",
			"nodefs.inodesFree":  "5%",
			"imagefs.available":  "15%",
			"imagefs.inodesFree": "5%",
		},
		NodeStatusUpdateFrequency: 10 * time.Second,
		NodeStatusReportFrequency: 5 * time.Minute,
		NodeLeaseDurationSeconds:  40,
		Port:                      10250,
		Cgroups: app.CgroupOptions{
			PerQOS: true, Root: "/", CPUCFSQuota: true, CPUCFSQuotaPeriod: 100 * time.Millisecond,
			PodPidsLimit: -1, EnforceNodeAllocatable: []string{"pods"},
		},
	}
}

// withKubeconfig edits defaultOptions() into what Parse gives with
// --kubeconfig /etc/kubernetes/kubelet.conf: upstream's defaults.
func withKubeconfig(o *app.Options) {
	o.Kubeconfig = "/etc/kubernetes/kubelet.conf"
	o.Address = "0.0.0.0"
	o.ReadOnlyAddress = "0.0.0.0"
	o.ReadOnlyPort = 0
	o.Authentication.Webhook.Enabled = ptr.To(true)
	o.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook
}

func TestParse(t *testing.T) {
	manifests := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		want   func(o *app.Options) // edits defaultOptions() into the expected Options
		unsupp []string
	}{
		{
			name: "no flags: upstream defaults, standalone read-only port on localhost",
			want: func(o *app.Options) {},
		},
		{
			name: "good YAML file",
			args: []string{"--config", "testdata/good.yaml"},
			want: func(o *app.Options) {
				o.StaticPodPath, _ = filepath.Abs(filepath.Join("testdata", "manifests"))
				o.SyncFrequency = 30 * time.Second
				o.FileCheckFrequency = 5 * time.Second
				o.RuntimeEndpoint = "unix:///run/test/containerd.sock"
				o.ImageEndpoint = "unix:///run/test/images.sock"
				o.RuntimeRequestTimeout = time.Minute
				o.CgroupDriver = "systemd"
				o.MaxParallelImagePulls = 3
				o.PodLogsDir = "/var/log/test-pods"
				o.ClusterDNS = []string{"10.96.0.10"}
				o.ClusterDomain = "cluster.local"
				o.ResolvConf = "/run/resolv.conf"
				o.Address = "192.0.2.1"
				o.ReadOnlyAddress = "192.0.2.1"
				o.ReadOnlyPort = 10256
				o.MaxPods = 50
			},
		},
		{
			name: "good JSON file",
			args: []string{"--config=testdata/good.json"},
			want: func(o *app.Options) {
				o.SyncFrequency = 45 * time.Second
				o.ClusterDNS = []string{"10.0.0.10", "fd00::10"}
				o.ResolvConf = ""
				o.MaxPods = 20
			},
		},
		{
			name: "flags override the file",
			args: []string{
				"--config", "testdata/good.yaml",
				"--pod-manifest-path", manifests,
				"--sync-frequency", "10s",
				"--file-check-frequency=1s",
				"--container-runtime-endpoint", "unix:///run/flag.sock",
				"--runtime-request-timeout", "3m",
				"--cgroup-driver", "cgroupfs",
				"--cluster-dns", "10.0.0.1,10.0.0.2",
				"--cluster-domain", "flag.local",
				"--resolv-conf=",
				"--read-only-port", "0",
				"--address", "::1",
				"--max-pods", "7",
				"--allowed-unsafe-sysctls", "kernel.msg*,net.core.somaxconn",
				"--static-pod-security", "baseline:v1.30",
				"--pod-security-floor=privileged",
			},
			want: func(o *app.Options) {
				o.AllowedUnsafeSysctls = []string{"kernel.msg*", "net.core.somaxconn"}
				o.StaticPodSecurity = "baseline:v1.30"
				o.PodSecurityFloor = "privileged"
				o.StaticPodPath = manifests
				o.SyncFrequency = 10 * time.Second
				o.FileCheckFrequency = time.Second
				o.RuntimeEndpoint = "unix:///run/flag.sock"
				o.ImageEndpoint = "unix:///run/test/images.sock" // from the file, flag not given
				o.RuntimeRequestTimeout = 3 * time.Minute
				o.CgroupDriver = "cgroupfs"
				o.MaxParallelImagePulls = 3
				o.PodLogsDir = "/var/log/test-pods"
				o.ClusterDNS = []string{"10.0.0.1", "10.0.0.2"}
				o.ClusterDomain = "flag.local"
				o.ResolvConf = ""
				o.Address = "::1"
				o.ReadOnlyAddress = "::1"
				o.ReadOnlyPort = 0
				o.MaxPods = 7
			},
		},
		{
			name: "static pod URL with headers",
			args: []string{"--manifest-url", "http://127.0.0.1:8080/pods", "--manifest-url-header", "Authorization:Bearer t,X-A:1", "--manifest-url-header", "X-A:2", "--http-check-frequency", "5s"},
			want: func(o *app.Options) {
				o.StaticPodURL = "http://127.0.0.1:8080/pods"
				o.StaticPodURLHeader = http.Header{"Authorization": {"Bearer t"}, "X-A": {"1", "2"}}
				o.HTTPCheckFrequency = 5 * time.Second
			},
		},
		{
			name: "flags equal to a default still override the file",
			args: []string{"--config", "testdata/good.yaml", "--sync-frequency", "1m", "--cgroup-driver=cgroupfs"},
			want: func(o *app.Options) {
				o.StaticPodPath, _ = filepath.Abs(filepath.Join("testdata", "manifests"))
				o.FileCheckFrequency = 5 * time.Second
				o.RuntimeEndpoint = "unix:///run/test/containerd.sock"
				o.ImageEndpoint = "unix:///run/test/images.sock"
				o.RuntimeRequestTimeout = time.Minute
				o.MaxParallelImagePulls = 3
				o.PodLogsDir = "/var/log/test-pods"
				o.ClusterDNS = []string{"10.96.0.10"}
				o.ClusterDomain = "cluster.local"
				o.ResolvConf = "/run/resolv.conf"
				o.Address = "192.0.2.1"
				o.ReadOnlyAddress = "192.0.2.1"
				o.ReadOnlyPort = 10256
				o.MaxPods = 50
			},
		},
		{
			name: "node flags",
			args: []string{"--hostname-override", "My-Node", "--node-ip", "10.1.2.3", "--root-dir", "/srv/berth", "--image-service-endpoint", "unix:///run/img.sock"},
			want: func(o *app.Options) {
				o.NodeName = "my-node"
				o.NodeIP = "10.1.2.3"
				o.RootDir = "/srv/berth"
				o.CertDir = "/srv/berth/pki" // follows --root-dir
				o.ImageEndpoint = "unix:///run/img.sock"
			},
		},
		{
			name: "standalone: file disables the read-only port",
			args: []string{"--config", "testdata/readonly-disabled.yaml"},
			want: func(o *app.Options) { o.ReadOnlyPort = 0 },
		},
		{
			name: "standalone: flag moves the read-only port, still on localhost",
			args: []string{"--read-only-port", "10300"},
			want: func(o *app.Options) { o.ReadOnlyPort = 10300 },
		},
		{
			name: "standalone: address set, default port",
			args: []string{"--address", "0.0.0.0"},
			want: func(o *app.Options) { o.Address, o.ReadOnlyAddress = "0.0.0.0", "0.0.0.0" },
		},
		{
			name: "kubeconfig: upstream defaults, read-only port off",
			args: []string{"--kubeconfig", "/etc/kubernetes/kubelet.conf"},
			want: func(o *app.Options) {
				withKubeconfig(o)
			},
		},
		{
			name: "kubeconfig: read-only port set explicitly",
			args: []string{"--kubeconfig", "/etc/kubernetes/kubelet.conf", "--read-only-port", "10255"},
			want: func(o *app.Options) {
				withKubeconfig(o)
				o.ReadOnlyPort = 10255
			},
		},
		{
			name: "serializeImagePulls false without a limit means unlimited",
			args: []string{"--config", writeConfig(t, "serializeImagePulls: false\n")},
			want: func(o *app.Options) { o.MaxParallelImagePulls = 0 },
		},
		{
			name: "unsupported fields are reported, supported ones are not",
			args: []string{"--config", "testdata/unsupported.yaml", "--max-pods", "5", "-v", "3", "--kubeconfig", "/etc/kubernetes/kubelet.conf"},
			want: func(o *app.Options) {
				withKubeconfig(o)
				o.Authentication.X509.ClientCAFile = "/etc/kubernetes/pki/ca.crt"
				o.StaticPodPath = "/etc/kubernetes/manifests"
				o.MaxPods = 5
				o.RegisterWithTaints = []v1.Taint{{Key: "example", Effect: v1.TaintEffectNoSchedule}}
				// Set in the file: no defaults merged in.
				o.EvictionHard = map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"}
			},
			unsupp: []string{"featureGates"},
		},
		{
			name: "node registration and status from the file",
			args: []string{"--config", "testdata/node.yaml", "--kubeconfig", "/etc/kubernetes/kubelet.conf"},
			want: func(o *app.Options) {
				withKubeconfig(o)
				o.KubeAPIQPS = 20
				o.KubeAPIBurst = 40
				o.EventRecordQPS = 0
				o.EventBurst = 30
				o.Port = 10260
				o.RegisterWithTaints = []v1.Taint{
					{Key: "dedicated", Value: "edge", Effect: v1.TaintEffectNoSchedule},
					{Key: "example.com/maintenance", Effect: v1.TaintEffectNoExecute},
				}
				o.KubeReserved = v1.ResourceList{
					v1.ResourceCPU:              resource.MustParse("100m"),
					v1.ResourceMemory:           resource.MustParse("256Mi"),
					v1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
					"pid":                       resource.MustParse("1000"),
				}
				o.SystemReserved = v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")}
				// mergeDefaultEvictionSettings fills in the signals not set.
				o.EvictionHard = map[string]string{
					"memory.available":   "500Mi",
					"nodefs.available":   "10%",
					"nodefs.inodesFree":  "5%",
					"imagefs.available":  "20%",
					"imagefs.inodesFree": "5%",
				}
				o.NodeStatusUpdateFrequency = 20 * time.Second
				o.NodeStatusReportFrequency = time.Minute
				o.NodeLeaseDurationSeconds = 60
			},
		},
		{
			name: "node registration and status flags override the file",
			args: []string{
				"--config", "testdata/node.yaml",
				"--node-labels", "example.com/role=edge, node.kubernetes.io/pool=,topology.kubernetes.io/zone=z1",
				"--node-labels", "flag-only",
				"--register-with-taints", "a=b:NoSchedule,c:PreferNoSchedule",
				"--kube-api-qps", "5",
				"--kube-api-burst", "10",
				"--event-burst", "7",
				"--port", "10270",
				"--kube-reserved", "cpu=0.0005,memory=1Gi",
				"--system-reserved", "memory=512Mi",
				"--eviction-hard", "memory.available<1Gi",
				"--node-status-update-frequency", "15s",
				"--max-pods", "30",
			},
			want: func(o *app.Options) {
				o.NodeLabels = map[string]string{
					"example.com/role":            "edge",
					"node.kubernetes.io/pool":     "",
					"topology.kubernetes.io/zone": "z1",
					"flag-only":                   "",
				}
				o.KubeAPIQPS = 5
				o.KubeAPIBurst = 10
				o.EventRecordQPS = 0 // from the file
				o.EventBurst = 7
				o.Port = 10270
				o.RegisterWithTaints = []v1.Taint{
					{Key: "a", Value: "b", Effect: v1.TaintEffectNoSchedule},
					{Key: "c", Effect: v1.TaintEffectPreferNoSchedule},
				}
				// cpu is rounded to millicores, as upstream.
				o.KubeReserved = v1.ResourceList{v1.ResourceCPU: resource.MustParse("1m"), v1.ResourceMemory: resource.MustParse("1Gi")}
				o.SystemReserved = v1.ResourceList{v1.ResourceMemory: resource.MustParse("512Mi")}
				// As upstream: the defaults were merged in when the file
				// was read; the flag replaces the whole map.
				o.EvictionHard = map[string]string{"memory.available": "1Gi"}
				o.NodeStatusUpdateFrequency = 15 * time.Second
				o.NodeStatusReportFrequency = time.Minute
				o.NodeLeaseDurationSeconds = 60
				o.MaxPods = 30
			},
		},
		{
			name: "server, log and stats settings from the file",
			args: []string{"--config", "testdata/server.yaml"},
			want: func(o *app.Options) {
				o.Address, o.ReadOnlyAddress = "192.0.2.1", "192.0.2.1"
				o.HealthzBindAddress = "0.0.0.0"
				o.HealthzPort = 0
				// Relative to the file, as upstream.
				o.TLSCertFile = filepath.Join("testdata", "pki", "serving.crt")
				o.TLSPrivateKeyFile = filepath.Join("testdata", "pki", "serving.key")
				o.TLSMinVersion = "VersionTLS12"
				o.TLSCipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}
				o.Authentication.Anonymous.Enabled = ptr.To(true)
				o.Authentication.X509.ClientCAFile = filepath.Join("testdata", "pki", "ca.crt")
				o.EnableDebuggingHandlers = false
				o.EnableSystemLogHandler = false
				o.EnableProfilingHandler = false
				o.ContainerLogMaxSize = 50 << 20
				o.ContainerLogMaxFiles = 3
				o.ContainerLogMaxWorkers = 2
				o.ContainerLogMonitorInterval = 30 * time.Second
				o.VolumeStatsAggPeriod = -time.Second
				o.KubeletCgroups = "/berth"
				o.SystemCgroups = "/system.slice"
			},
		},
		{
			name: "server, log and stats flags override the file",
			args: []string{
				"--config", "testdata/server.yaml",
				"--healthz-bind-address", "::1",
				"--healthz-port", "10249",
				"--tls-cert-file", "/etc/berth/tls.crt",
				"--tls-private-key-file", "/etc/berth/tls.key",
				"--tls-min-version", "VersionTLS13",
				"--tls-cipher-suites", "TLS_AES_128_GCM_SHA256",
				"--anonymous-auth=false",
				"--client-ca-file", "/etc/berth/ca.crt",
				"--authorization-mode", "AlwaysAllow",
				"--enable-debugging-handlers=true",
				"--container-log-max-size", "1Gi",
				"--container-log-max-files", "2",
				"--volume-stats-agg-period", "5m",
				"--kubelet-cgroups", "/kubelet.slice",
				"--system-cgroups", "/sys.slice",
				"--cert-dir", "/etc/berth/pki",
				"--housekeeping-interval", "30s",
			},
			want: func(o *app.Options) {
				o.Address, o.ReadOnlyAddress = "192.0.2.1", "192.0.2.1"
				o.HealthzBindAddress = "::1"
				o.HealthzPort = 10249
				o.TLSCertFile = "/etc/berth/tls.crt"
				o.TLSPrivateKeyFile = "/etc/berth/tls.key"
				o.TLSMinVersion = "VersionTLS13"
				o.TLSCipherSuites = []string{"TLS_AES_128_GCM_SHA256"}
				o.Authentication.X509.ClientCAFile = "/etc/berth/ca.crt"
				o.EnableSystemLogHandler = false
				o.EnableProfilingHandler = false
				o.ContainerLogMaxSize = 1 << 30
				o.ContainerLogMaxFiles = 2
				o.ContainerLogMaxWorkers = 2
				o.ContainerLogMonitorInterval = 30 * time.Second
				o.VolumeStatsAggPeriod = 5 * time.Minute
				o.KubeletCgroups = "/kubelet.slice"
				o.SystemCgroups = "/sys.slice"
				o.CertDir = "/etc/berth/pki"
				o.HousekeepingInterval = 30 * time.Second
			},
		},
		{
			name: "kubeconfig: webhook settings by flag",
			args: []string{
				"--kubeconfig", "/etc/kubernetes/kubelet.conf",
				"--authentication-token-webhook=false",
				"--authentication-token-webhook-cache-ttl", "1m",
				"--authorization-webhook-cache-authorized-ttl", "1m",
				"--authorization-webhook-cache-unauthorized-ttl", "10s",
			},
			want: func(o *app.Options) {
				withKubeconfig(o)
				o.Authentication.Webhook.Enabled = ptr.To(false)
				o.Authentication.Webhook.CacheTTL.Duration = time.Minute
				o.Authorization.Webhook.CacheAuthorizedTTL.Duration = time.Minute
				o.Authorization.Webhook.CacheUnauthorizedTTL.Duration = 10 * time.Second
			},
		},
		{
			name: "kubeconfig: AlwaysAllow by flag",
			args: []string{"--kubeconfig", "/etc/kubernetes/kubelet.conf", "--authorization-mode", "AlwaysAllow"},
			want: func(o *app.Options) {
				withKubeconfig(o)
				o.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeAlwaysAllow
			},
		},
		{
			name: "standalone: anonymous requests allowed by flag, webhooks stay off",
			args: []string{"--anonymous-auth"},
			want: func(o *app.Options) { o.Authentication.Anonymous.Enabled = ptr.To(true) },
		},
		{
			name: "standalone: webhook explicitly off in the file",
			args: []string{"--config", writeConfig(t, "authentication:\n  webhook:\n    enabled: false\n")},
			want: func(o *app.Options) {},
		},
		{
			name: "negative containerLogMaxSize disables rotation",
			args: []string{"--container-log-max-size", "-1"},
			want: func(o *app.Options) { o.ContainerLogMaxSize = -1 },
		},
		{
			name: "an explicitly empty evictionHard gets no defaults",
			args: []string{"--config", writeConfig(t, "evictionHard: {}\n")},
			want: func(o *app.Options) { o.EvictionHard = map[string]string{} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Parse(tt.args, testEnv())
			if err != nil {
				t.Fatal(err)
			}
			want := defaultOptions()
			tt.want(&want)
			got := res.Options
			if got.Config == nil {
				t.Fatal("Options.Config is nil")
			}
			got.Config = nil
			if got.Configz == nil {
				t.Fatal("Options.Configz is nil")
			}
			got.Configz = nil
			// Semantic: quantities compare by value, not by cached text.
			if !apiequality.Semantic.DeepEqual(got, want) {
				t.Errorf("Options:\n got %+v\nwant %+v", got, want)
			}
			if !slices.Equal(res.Unsupported, tt.unsupp) {
				t.Errorf("Unsupported:\n got %q\nwant %q", res.Unsupported, tt.unsupp)
			}
		})
	}
}

// writeConfig writes a KubeletConfiguration file with body after the type
// header and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	data := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" + body
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParseConfig checks the merged configuration kept for /configz.
func TestParseConfig(t *testing.T) {
	res, err := Parse([]string{"--config", "testdata/good.yaml", "--max-pods", "9", "--v=4"}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Options.Config
	if cfg.APIVersion != APIVersion || cfg.Kind != Kind {
		t.Errorf("TypeMeta = %q %q", cfg.APIVersion, cfg.Kind)
	}
	if cfg.MaxPods != 9 || cfg.Logging.Verbosity != 4 {
		t.Errorf("maxPods %d verbosity %d, want the flag values 9 and 4", cfg.MaxPods, cfg.Logging.Verbosity)
	}
	if cfg.HealthzPort == nil || *cfg.HealthzPort != 10248 {
		t.Errorf("healthzPort not defaulted: %v", cfg.HealthzPort)
	}

	// The merged configuration is itself a valid config file, so /configz
	// output can be fed back to berth.
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Decode(data); err != nil {
		t.Errorf("merged configuration does not decode: %v", err)
	}
}

func TestParseStandaloneConfig(t *testing.T) {
	res, err := Parse(nil, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Standalone() {
		t.Error("Standalone() = false without --kubeconfig")
	}
	if cfg := res.Options.Config; cfg.ReadOnlyPort != 10255 || cfg.Address != "127.0.0.1" {
		t.Errorf("merged config: readOnlyPort %d address %q, want what berth uses (10255 on 127.0.0.1)", cfg.ReadOnlyPort, cfg.Address)
	}
	if cfg := res.Options.Config; *cfg.Authentication.Webhook.Enabled || cfg.Authorization.Mode != kubeletconfig.KubeletAuthorizationModeAlwaysAllow {
		t.Errorf("merged config: webhook authentication %v, authorization mode %q, want what berth uses (off, AlwaysAllow)",
			*cfg.Authentication.Webhook.Enabled, cfg.Authorization.Mode)
	}
	// Options must not share pointers with the configuration kept for /configz.
	if res.Options.Authentication.Webhook.Enabled == res.Options.Config.Authentication.Webhook.Enabled {
		t.Error("Options.Authentication shares pointers with Options.Config")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       *Env
		usage     bool     // want a *UsageError
		wantInErr []string // substrings
	}{
		{name: "unknown flag", args: []string{"--no-such-flag"}, usage: true, wantInErr: []string{"unknown flag: --no-such-flag"}},
		{name: "stray argument", args: []string{"run"}, usage: true, wantInErr: []string{`unexpected argument "run"`}},
		{name: "bad duration flag", args: []string{"--sync-frequency", "soon"}, usage: true, wantInErr: []string{"sync-frequency", "soon"}},
		{name: "bad number flag", args: []string{"--max-pods", "many"}, usage: true, wantInErr: []string{"max-pods"}},
		{name: "negative -v", args: []string{"-v", "-1"}, usage: true, wantInErr: []string{"-1"}},
		{name: "bad pod security levels", args: []string{"--static-pod-security", "strict", "--pod-security-floor", "baseline:1.30"},
			wantInErr: []string{`--static-pod-security: pod security level "strict": must be one of privileged, baseline, restricted`,
				`--pod-security-floor: pod security version "1.30": must be "latest" or "v1.x"`}},
		{name: "bad image credential verification", args: []string{"--config", "testdata/bad-image-verification.yaml"},
			wantInErr: []string{"can't set `preloadedImagesVerificationAllowlist` if `imagePullCredentialsVerificationPolicy` is not \"NeverVerifyAllowlistedImages\""}},
		{name: "empty --config", args: []string{"--config="}, usage: true, wantInErr: []string{"--config must not be empty"}},
		{name: "missing config file", args: []string{"--config", "testdata/nope.yaml"}, wantInErr: []string{"read config file", "testdata/nope.yaml"}},
		{name: "unknown field", args: []string{"--config", "testdata/unknown-field.yaml"}, wantInErr: []string{`config file "testdata/unknown-field.yaml"`, `field "podManifestPath": unknown field`}},
		{name: "wrong kind", args: []string{"--config", "testdata/wrong-kind.yaml"}, wantInErr: []string{`field "kind"`}},
		{name: "bad duration in file", args: []string{"--config", "testdata/bad-duration.yaml"}, wantInErr: []string{`field "syncFrequency"`}},
		{
			name: "invalid values in file",
			args: []string{"--config", "testdata/invalid-values.yaml"},
			wantInErr: []string{
				"invalid configuration: ",
				`cgroupDriver (--cgroup-driver) "cgroupv3" is not supported`,
				`containerRuntimeEndpoint (--container-runtime-endpoint) "tcp://127.0.0.1:1234": protocol "tcp" is not supported`,
				"port (--port) 70000 must be between 1 and 65535",
				"readOnlyPort (--read-only-port) -1 must be between 0 and 65535",
				"healthzPort (--healthz-port) 65536 must be between 0 and 65535",
				"syncFrequency (--sync-frequency) must be greater than zero, got -5s",
				`podLogsDir "/var/log/../pods" must be a clean path`,
				`clusterDNS (--cluster-dns) "not-an-ip" is not an IP address`,
			},
		},
		{name: "idsPerPod not a multiple of 65536", args: []string{"--config", writeConfig(t, "userNamespaces:\n  idsPerPod: 100000\n")},
			wantInErr: []string{"userNamespaces.idsPerPod must be a multiple of 65536"}},
		{name: "idsPerPod too big", args: []string{"--config", writeConfig(t, "userNamespaces:\n  idsPerPod: 4295032832\n")},
			wantInErr: []string{"userNamespaces.idsPerPod must not be more than 4294967295"}},
		{name: "zero duration flag", args: []string{"--file-check-frequency", "0s"}, wantInErr: []string{"fileCheckFrequency (--file-check-frequency) must be greater than zero"}},
		{name: "negative port flag", args: []string{"--read-only-port", "-5"}, wantInErr: []string{"readOnlyPort (--read-only-port) -5"}},
		{name: "port too big", args: []string{"--read-only-port", "65536"}, wantInErr: []string{"readOnlyPort (--read-only-port) 65536"}},
		{name: "negative max pods", args: []string{"--max-pods", "-1"}, wantInErr: []string{"maxPods (--max-pods) -1 must not be negative"}},
		{name: "unknown cgroup driver", args: []string{"--cgroup-driver", "cgroupv2"}, wantInErr: []string{`cgroupDriver (--cgroup-driver) "cgroupv2"`}},
		{name: "bare socket path", args: []string{"--container-runtime-endpoint", "/run/containerd/containerd.sock"}, wantInErr: []string{"want a unix:// URL"}},
		{name: "tcp endpoint", args: []string{"--container-runtime-endpoint", "tcp://localhost:1"}, wantInErr: []string{`protocol "tcp" is not supported`}},
		{name: "npipe endpoint", args: []string{"--container-runtime-endpoint", "npipe:////./pipe/containerd"}, wantInErr: []string{"npipe endpoints are for Windows"}},
		{name: "unix endpoint with a host", args: []string{"--container-runtime-endpoint", "unix://run/containerd.sock"}, wantInErr: []string{"absolute socket path"}},
		{name: "bad image endpoint", args: []string{"--image-service-endpoint", "http://x"}, wantInErr: []string{"imageServiceEndpoint (--image-service-endpoint)"}},
		{name: "bad address", args: []string{"--address", "localhost"}, usage: true, wantInErr: []string{`invalid argument "localhost" for "--address" flag: "localhost" is not a valid IP address`}},
		{name: "bad cluster dns", args: []string{"--cluster-dns", "10.0.0.1,dns"}, wantInErr: []string{`clusterDNS (--cluster-dns) "dns"`}},
		{name: "bad node ip", args: []string{"--node-ip", "10.0.0"}, wantInErr: []string{`--node-ip "10.0.0": "10.0.0" is not an IP address`}},
		{name: "two IPv4 node ips", args: []string{"--node-ip", "10.0.0.1,10.0.0.2"}, wantInErr: []string{"must contain either a single IP or a dual-stack pair of IPs"}},
		{name: "three node ips", args: []string{"--node-ip", "10.0.0.1,fd00::1,10.0.0.2"}, wantInErr: []string{"must contain either a single IP or a dual-stack pair of IPs"}},
		{name: "unspecified in a dual-stack pair", args: []string{"--node-ip", "0.0.0.0,fd00::1"}, wantInErr: []string{"dual-stack node IP cannot include '0.0.0.0' or '::'"}},
		{name: "built-in cloud provider", args: []string{"--cloud-provider", "aws"}, wantInErr: []string{`--cloud-provider "aws": built-in cloud providers are disabled`}},
		{name: "unknown feature gate", args: []string{"--feature-gates", "NoSuchGate=true"}, wantInErr: []string{"featureGates (--feature-gates): unrecognized feature gate: NoSuchGate"}},
		{name: "locked feature gate", args: []string{"--feature-gates", "KubeletCgroupDriverFromCRI=false"}, wantInErr: []string{"cannot set feature gate KubeletCgroupDriverFromCRI to false, feature is locked to true"}},
		{name: "bad feature gate value", args: []string{"--feature-gates", "MemoryQoS=maybe"}, usage: true, wantInErr: []string{"--feature-gates"}},
		{name: "empty root dir", args: []string{"--root-dir="}, wantInErr: []string{"--root-dir must not be empty"}},
		{name: "invalid node name", args: []string{"--hostname-override", "node_1"}, wantInErr: []string{`node name "node_1"`}},
		{
			name:      "hostname fails",
			env:       &Env{Hostname: func() (string, error) { return "", errors.New("uname broke") }},
			wantInErr: []string{"get host name: uname broke"},
		},
		{
			name:      "empty hostname",
			env:       &Env{Hostname: func() (string, error) { return "  ", nil }},
			wantInErr: []string{"node name is empty"},
		},
		{
			name:      "node label a node may not set",
			args:      []string{"--node-labels", "node-restriction.kubernetes.io/pool=a,kubernetes.io/role=x,node.kubernetes.io/ok=1,k8s.io/x=y,node-role.kubernetes.io/worker="},
			wantInErr: []string{"--node-labels: a node may not set k8s.io/x, kubernetes.io/role, node-restriction.kubernetes.io/pool, node-role.kubernetes.io/worker"},
		},
		{
			name:      "invalid node labels",
			args:      []string{"--node-labels", "bad key=v,good=bad value"},
			wantInErr: []string{`--node-labels: invalid label key "bad key"`, `--node-labels: invalid label value "bad value" of "good"`},
		},
		{name: "taint without effect", args: []string{"--register-with-taints", "a=b"}, usage: true, wantInErr: []string{`invalid taint "a=b"`}},
		{name: "taint with a bad effect", args: []string{"--register-with-taints", "a=b:Sometimes"}, usage: true, wantInErr: []string{`unknown effect "Sometimes"`}},
		{name: "taint with a bad value", args: []string{"--register-with-taints", "a=b=c:NoSchedule"}, usage: true, wantInErr: []string{`invalid taint "a=b=c:NoSchedule"`}},
		{name: "duplicate taints", args: []string{"--register-with-taints", "a=1:NoSchedule,a=2:NoSchedule"}, wantInErr: []string{"registerWithTaints[1] (--register-with-taints): duplicate taint a:NoSchedule"}},
		{
			name:      "taint in the file without an effect",
			args:      []string{"--config", writeConfig(t, "registerWithTaints:\n- key: a\n")},
			wantInErr: []string{"registerWithTaints[0] (--register-with-taints): effect is required"},
		},
		{
			name:      "taint in the file with timeAdded",
			args:      []string{"--config", writeConfig(t, "registerWithTaints:\n- key: a\n  effect: NoExecute\n  timeAdded: \"2024-01-01T00:00:00Z\"\n")},
			wantInErr: []string{"registerWithTaints[0] (--register-with-taints): timeAdded must not be set"},
		},
		{
			name: "bad reservations",
			args: []string{"--kube-reserved", "gpu=1,memory=-1Gi", "--system-reserved", "cpu=lots"},
			wantInErr: []string{
				`kubeReserved (--kube-reserved): cannot reserve "gpu"`,
				`kubeReserved (--kube-reserved): quantity for "memory" must not be negative`,
				`systemReserved (--system-reserved): quantity "lots" for "cpu"`,
			},
		},
		{
			name: "bad eviction thresholds",
			args: []string{"--eviction-hard", "memory.free<1Gi,nodefs.available<120%,imagefs.available<-5Gi,nodefs.inodesFree<many"},
			wantInErr: []string{
				`evictionHard (--eviction-hard): unknown signal "memory.free"`,
				`evictionHard (--eviction-hard) nodefs.available: "120%" must be a percentage between 0% and 100%`,
				`evictionHard (--eviction-hard) imagefs.available: "-5Gi" must be positive`,
				`evictionHard (--eviction-hard) nodefs.inodesFree: "many" is neither a quantity nor a percentage`,
			},
		},
		{
			name: "bad API client and heartbeat settings",
			args: []string{
				"--config", writeConfig(t, "nodeLeaseDurationSeconds: -1\nnodeStatusReportFrequency: -1s\n"),
				"--kube-api-qps", "-1", "--kube-api-burst", "-2", "--node-status-update-frequency", "-3s", "--port", "0",
				"--event-qps", "-4", "--event-burst", "-5",
			},
			wantInErr: []string{
				"kubeAPIQPS (--kube-api-qps) -1 must not be negative",
				"kubeAPIBurst (--kube-api-burst) -2 must not be negative",
				"eventRecordQPS (--event-qps) -4 must not be negative",
				"eventBurst (--event-burst) -5 must not be negative",
				"nodeLeaseDurationSeconds -1 must be greater than zero",
				"nodeStatusUpdateFrequency (--node-status-update-frequency) must be greater than zero",
				"nodeStatusReportFrequency must be greater than zero",
				"port (--port) 0 must be between 1 and 65535",
			},
		},
		{
			name: "bad container log settings",
			args: []string{
				"--config", writeConfig(t, "containerLogMaxWorkers: 0\ncontainerLogMonitorInterval: 2s\n"),
				"--container-log-max-size", "ten megs", "--container-log-max-files", "1",
			},
			wantInErr: []string{
				`containerLogMaxSize (--container-log-max-size) "ten megs": not a quantity such as 10Mi`,
				"containerLogMaxFiles (--container-log-max-files) 1 must be at least 2",
				"containerLogMaxWorkers 0 must be at least 1",
				"containerLogMonitorInterval must be at least 3s, got 2s",
			},
		},
		{name: "zero containerLogMaxSize", args: []string{"--container-log-max-size", "0"}, wantInErr: []string{`containerLogMaxSize (--container-log-max-size) "0": must not be zero`}},
		{name: "fractional containerLogMaxSize", args: []string{"--container-log-max-size", "1.5"}, wantInErr: []string{`"1.5": not a whole number of bytes`}},
		{
			name: "bad TLS settings",
			args: []string{"--tls-min-version", "VersionTLS14", "--tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_MADE_UP", "--tls-cert-file", "/etc/berth/tls.crt"},
			wantInErr: []string{
				`tlsMinVersion (--tls-min-version) "VersionTLS14" is not a TLS version`,
				`tlsCipherSuites (--tls-cipher-suites) "TLS_MADE_UP" is not a cipher suite`,
				"tlsCertFile (--tls-cert-file) and tlsPrivateKeyFile (--tls-private-key-file) must be given together",
			},
		},
		{name: "key without certificate", args: []string{"--tls-private-key-file", "/etc/berth/tls.key"}, wantInErr: []string{"must be given together"}},
		{
			name:      "unknown authorization mode",
			args:      []string{"--kubeconfig", "/etc/kubernetes/kubelet.conf", "--authorization-mode", "RBAC"},
			wantInErr: []string{`authorization.mode (--authorization-mode) "RBAC" is not supported, want AlwaysAllow or Webhook`},
		},
		{
			name: "standalone: webhooks asked for by flag",
			args: []string{"--authentication-token-webhook", "--authorization-mode", "Webhook"},
			wantInErr: []string{
				"authentication.webhook.enabled (--authentication-token-webhook) needs --kubeconfig",
				"authorization.mode (--authorization-mode) Webhook needs --kubeconfig",
			},
		},
		{
			name:      "standalone: webhook authorization asked for in the file",
			args:      []string{"--config", writeConfig(t, "authorization:\n  mode: Webhook\n")},
			wantInErr: []string{"authorization.mode (--authorization-mode) Webhook needs --kubeconfig"},
		},
		{
			name: "negative webhook cache TTLs",
			args: []string{
				"--kubeconfig", "/etc/kubernetes/kubelet.conf", "--authentication-token-webhook-cache-ttl", "-1s",
				"--authorization-webhook-cache-authorized-ttl", "-1m", "--authorization-webhook-cache-unauthorized-ttl", "-1h",
			},
			wantInErr: []string{
				"authentication.webhook.cacheTTL (--authentication-token-webhook-cache-ttl) must not be negative, got -1s",
				"authorization.webhook.cacheAuthorizedTTL (--authorization-webhook-cache-authorized-ttl) must not be negative, got -1m0s",
				"authorization.webhook.cacheUnauthorizedTTL (--authorization-webhook-cache-unauthorized-ttl) must not be negative, got -1h0m0s",
			},
		},
		{
			name: "bad healthz settings",
			args: []string{"--healthz-port", "-1"},
			wantInErr: []string{
				"healthzPort (--healthz-port) -1 must be between 0 and 65535",
			},
		},
		{
			name:      "bad healthz address",
			args:      []string{"--healthz-bind-address", "localhost"},
			usage:     true,
			wantInErr: []string{`invalid argument "localhost" for "--healthz-bind-address" flag`},
		},
		{
			name: "bad cgroup names",
			args: []string{"--kubelet-cgroups", "berth", "--system-cgroups", "system.slice"},
			wantInErr: []string{
				`kubeletCgroups (--kubelet-cgroups) "berth" must be an absolute cgroup name`,
				`systemCgroups (--system-cgroups) "system.slice" must be an absolute cgroup name`,
				"systemCgroups (--system-cgroups) needs cgroupRoot",
			},
		},
		{name: "empty cert dir", args: []string{"--cert-dir="}, wantInErr: []string{"--cert-dir must not be empty"}},
		{name: "zero housekeeping interval", args: []string{"--housekeeping-interval", "0s"}, wantInErr: []string{"--housekeeping-interval must be greater than zero, got 0s"}},
		{
			name:      "parallel pulls need serializeImagePulls false",
			args:      []string{"--config", writeConfig(t, "serializeImagePulls: true\nmaxParallelImagePulls: 2\n")},
			wantInErr: []string{"maxParallelImagePulls 2 needs serializeImagePulls: false"},
		},
		{
			name:      "maxParallelImagePulls must be positive",
			args:      []string{"--config", writeConfig(t, "serializeImagePulls: false\nmaxParallelImagePulls: 0\n")},
			wantInErr: []string{"maxParallelImagePulls 0 must be at least 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv()
			if tt.env != nil {
				env = *tt.env
			}
			res, err := Parse(tt.args, env)
			if err == nil {
				t.Fatalf("want an error, got %+v", res)
			}
			var usageErr *UsageError
			if got := errors.As(err, &usageErr); got != tt.usage {
				t.Errorf("usage error = %v, want %v (%v)", got, tt.usage, err)
			}
			for _, want := range tt.wantInErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestParseHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse([]string{"-h"}, Env{Output: &out})
	if !errors.Is(err, ErrHelp) {
		t.Errorf("-h: got %v, want ErrHelp", err)
	}
	if !strings.Contains(out.String(), "--pod-manifest-path") {
		t.Errorf("-h did not print the flags:\n%s", out.String())
	}

	// --version wins even over a broken configuration: nothing is loaded.
	res, err := Parse([]string{"--version", "--config", "testdata/nope.yaml"}, testEnv())
	if err != nil || !res.Version {
		t.Errorf("--version: got %+v, %v", res, err)
	}
}

func TestParseWarnings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // warning messages, in order
	}{
		{name: "no static pod path", args: nil, want: nil},
		{name: "existing directory", args: []string{"--pod-manifest-path", dir}, want: nil},
		{
			name: "missing directory is not an error",
			args: []string{"--pod-manifest-path", filepath.Join(dir, "later")},
			want: []string{"Warning: staticPodPath does not exist yet; static pods start when it appears"},
		},
		{
			name: "single file",
			args: []string{"--pod-manifest-path", file},
			want: []string{"Warning: staticPodPath is not a directory; it is read as a single manifest file"},
		},
		{name: "kubeconfig", args: []string{"--kubeconfig", "/etc/kubernetes/kubelet.conf"}, want: nil},
		{name: "secure cipher suites", args: []string{"--tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, want: nil},
		{
			name: "insecure cipher suite",
			args: []string{"--tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA"},
			want: []string{"Warning: insecure TLS cipher suites in tlsCipherSuites"},
		},
		{
			name: "cipher suites with TLS 1.3",
			args: []string{"--tls-min-version", "VersionTLS13", "--tls-cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			want: []string{"Warning: TLS 1.3 cipher suites are not configurable; tlsCipherSuites is ignored"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Parse(tt.args, testEnv())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range res.Warnings {
				got = append(got, w.Msg)
				if len(w.KeysAndValues)%2 != 0 {
					t.Errorf("warning %q: odd key/value list %v", w.Msg, w.KeysAndValues)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// Parse must not share state between calls.
func TestParseIsRepeatable(t *testing.T) {
	args := []string{"--config", "testdata/good.yaml", "--max-pods", "3"}
	first, err := Parse(args, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	second, err := Parse(args, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if first.Options.Config == second.Options.Config {
		t.Error("two Parse calls share one configuration")
	}
	a, _ := json.Marshal(first.Options.Config)
	b, _ := json.Marshal(second.Options.Config)
	if !bytes.Equal(a, b) {
		t.Error("two Parse calls with the same arguments differ")
	}
}

// The runtime resolves relative bind-mount sources against its own
// directories, so every path berth hands on must be absolute.
func TestParseMakesPathsAbsolute(t *testing.T) {
	res, err := Parse([]string{"--root-dir", "rel/root", "--pod-manifest-path", "rel/manifests", "--hostname-override", "n1"}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"RootDir": res.Options.RootDir, "StaticPodPath": res.Options.StaticPodPath, "CertDir": res.Options.CertDir} {
		if !filepath.IsAbs(p) {
			t.Errorf("%s = %q, want an absolute path", name, p)
		}
	}
}
