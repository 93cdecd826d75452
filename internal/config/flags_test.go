package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every flag upstream defines parses; the full set is compared with
// upstream's in cluster/compare/kubeletflags. Here: kubeadm's command line
// (its systemd drop-in and kubeadm-flags.env) is accepted, and the flags
// berth does not act on are reported by name.
func TestParseKubeadmFlags(t *testing.T) {
	cfg := writeConfig(t, "rotateCertificates: true\nstaticPodPath: /etc/kubernetes/manifests\n")
	args := []string{
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
		"--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--config=" + cfg,
		"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
		"--pod-infra-container-image=registry.k8s.io/pause:3.10",
	}
	if _, err := Parse(args, testEnv()); err == nil || !strings.Contains(err.Error(), "unknown flag: --pod-infra-container-image") {
		t.Fatalf("a flag upstream v1.37 removed must stay unknown, got %v", err)
	}
	args = append(args[:4], "--node-ip=127.0.0.1", "--node_labels=a=b", "--lock-file=/run/kubelet.lock", "--runtime-cgroups=/system.slice/containerd.service")
	res, err := Parse(args, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.UnsupportedFlags, []string{"--lock-file", "--runtime-cgroups"}; !slices.Equal(got, want) {
		t.Errorf("UnsupportedFlags = %q, want %q", got, want)
	}
	if len(res.Unsupported) > 0 {
		t.Errorf("Unsupported = %q, want none", res.Unsupported)
	}
	o := res.Options
	if o.BootstrapKubeconfig != "/etc/kubernetes/bootstrap-kubelet.conf" {
		t.Errorf("BootstrapKubeconfig = %q", o.BootstrapKubeconfig)
	}
	if o.NodeIP != "127.0.0.1" || o.NodeLabels["a"] != "b" || o.RuntimeEndpoint != "unix:///var/run/containerd/containerd.sock" {
		t.Errorf("NodeIP %q, NodeLabels %v, RuntimeEndpoint %q", o.NodeIP, o.NodeLabels, o.RuntimeEndpoint)
	}
}

func TestParseNodeRegistrationFlags(t *testing.T) {
	tests := []struct {
		args         []string
		nodeIP       string
		external     bool
		providerID   string
		unsupported  []string
		wantInErrors string
	}{
		{args: []string{"--node-ip", "10.0.0.1,fd00::1"}, nodeIP: "10.0.0.1,fd00::1"},
		{args: []string{"--node-ip", "fd00::0:1, 10.0.0.1"}, nodeIP: "fd00::1,10.0.0.1"},
		{args: []string{"--node-ip", "::"}, nodeIP: ""},
		{args: []string{"--cloud-provider", "external", "--provider-id", "aws:///eu-west-1a/i-0123"}, external: true, providerID: "aws:///eu-west-1a/i-0123"},
		{args: []string{"--config", writeConfig(t, "providerID: gce://p/z/n\n")}, providerID: "gce://p/z/n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res, err := Parse(tt.args, testEnv())
			if err != nil {
				t.Fatal(err)
			}
			o := res.Options
			if o.NodeIP != tt.nodeIP || o.ExternalCloudProvider != tt.external || o.ProviderID != tt.providerID {
				t.Errorf("NodeIP %q ExternalCloudProvider %v ProviderID %q, want %q %v %q",
					o.NodeIP, o.ExternalCloudProvider, o.ProviderID, tt.nodeIP, tt.external, tt.providerID)
			}
			if len(res.Unsupported) > 0 || len(res.UnsupportedFlags) > 0 {
				t.Errorf("unsupported %q %q", res.Unsupported, res.UnsupportedFlags)
			}
		})
	}
}

// TestRefusals: every field in the table exists, the upstream defaults
// pass it, and a value that needs enforcement is refused naming the field
// and its flag.
func TestRefusals(t *testing.T) {
	defaults := &Cfg{}
	SetDefaults(defaults)
	applyEvictionDefaults(defaults)
	for _, r := range refusals() {
		if !r.honoured(defaults) {
			t.Errorf("%s: refused at its default", r.field)
		}
		if !fieldExists(r.field) {
			t.Errorf("%s: no such field", r.field)
		}
		if isSupported(r.field) {
			t.Errorf("%s: both refused and in supportedFields", r.field)
		}
	}

	tests := []struct {
		args    []string
		wantErr []string // empty: accepted
	}{
		{args: []string{"--protect-kernel-defaults"}}, // enforced: internal/kerneltunables
		{args: []string{"--reserved-cpus", "0-1", "--pods-per-core", "10"}, wantErr: []string{"reservedSystemCPUs (--reserved-cpus) is refused", "podsPerCore (--pods-per-core) is refused"}},
		{args: []string{"--qos-reserved", "memory=50%"}, wantErr: []string{"qosReserved (--qos-reserved) is refused"}},
		{args: []string{"--image-gc-high-threshold", "100", "--image-gc-low-threshold", "99"}},
		{args: []string{"--cpu-manager-policy", "static"}, wantErr: []string{"cpuManagerPolicy (--cpu-manager-policy) is refused"}},
		{args: []string{"--cpu-manager-policy", "none", "--topology-manager-policy", "none", "--memory-manager-policy", "None"}},
		{args: []string{"--enable-server=false"}, wantErr: []string{"enableServer (--enable-server) is refused"}},
		{args: []string{"--streaming-connection-idle-timeout=5m"}, wantErr: []string{"streamingConnectionIdleTimeout (--streaming-connection-idle-timeout) is refused"}},
		{args: []string{"--streaming-connection-idle-timeout=0"}},
		{args: []string{"--config", writeConfig(t, "memoryReservationPolicy: TieredReservation\ntlsCurvePreferences: [23]\n")}, wantErr: []string{"memoryReservationPolicy is refused", "tlsCurvePreferences is refused"}},
		// Settings that make berth only stricter when ignored are accepted.
		{args: []string{"--local-storage-capacity-isolation=false", "--make-iptables-util-chains=false"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := Parse(tt.args, testEnv())
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted, want refused")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// --seccomp-default adds to the field, as upstream ORs the two.
func TestSeccompDefaultFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--seccomp-default"}, true},
		{[]string{"--seccomp-default=false", "--config", writeConfig(t, "seccompDefault: true\n")}, true},
	} {
		res, err := Parse(tt.args, testEnv())
		if err != nil {
			t.Fatal(err)
		}
		if res.Options.SeccompDefault != tt.want {
			t.Errorf("%q: SeccompDefault = %v, want %v", tt.args, res.Options.SeccompDefault, tt.want)
		}
	}
}

func TestFailSwapOn(t *testing.T) {
	swapOn := testEnv()
	swapOn.SwapOn = func() (bool, error) { return true, nil }
	if _, err := Parse(nil, swapOn); err == nil || !strings.Contains(err.Error(), "running with swap on is not supported") {
		t.Errorf("swap on: got %v", err)
	}
	if _, err := Parse([]string{"--fail-swap-on=false"}, swapOn); err != nil {
		t.Errorf("swap on, --fail-swap-on=false: %v", err)
	}
	broken := testEnv()
	broken.SwapOn = func() (bool, error) { return false, errors.New("no proc") }
	if _, err := Parse(nil, broken); err == nil || !strings.Contains(err.Error(), "failed to determine if swap is on: no proc") {
		t.Errorf("swap unknown: got %v", err)
	}
	for _, tt := range []struct {
		data string
		want bool
	}{
		{"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", false},
		{"Filename\tType\tSize\tUsed\tPriority\n/swapfile  file  1048572  0  -2\n", true},
		{"", false},
	} {
		if got := swapsListed([]byte(tt.data)); got != tt.want {
			t.Errorf("swapsListed(%q) = %v, want %v", tt.data, got, tt.want)
		}
	}
}

func TestFeatureGateWarnings(t *testing.T) {
	res, err := Parse([]string{"--feature-gates", "MemoryQoS=false,KubeletCgroupDriverFromCRI=true", "--config", writeConfig(t, "featureGates:\n  AllAlpha: false\n  MemoryQoS: true\n")}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	// The flag wins for MemoryQoS; the file's AllAlpha stays.
	if got := res.Options.Config.FeatureGates; len(got) != 3 || got["MemoryQoS"] || got["AllAlpha"] || !got["KubeletCgroupDriverFromCRI"] {
		t.Errorf("featureGates = %v", got)
	}
	var gaWarned bool
	for _, w := range res.Warnings {
		if strings.Contains(w.Msg, "setting GA feature gate") && slices.Contains(w.KeysAndValues, any("KubeletCgroupDriverFromCRI")) {
			gaWarned = true
		}
	}
	if !gaWarned {
		t.Errorf("no warning for a GA gate: %+v", res.Warnings)
	}
	if !slices.Contains(res.Unsupported, "featureGates") {
		t.Errorf("featureGates not reported as not acted on: %q", res.Unsupported)
	}
}

func TestParseVersionRaw(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"--version=raw"}, {"--version=true"}} {
		res, err := Parse(args, testEnv())
		if err != nil || !res.Version {
			t.Errorf("%q: %v, %+v", args, err, res)
		}
	}
	if _, err := Parse([]string{"--version=v1.2.3"}, testEnv()); err == nil {
		t.Error("--version=v1.2.3 accepted; berth does not override its version")
	}
}

// TestDropIns: --config-dir as upstream: .conf files in lexical order of
// their paths, subdirectories included, merged over the file as JSON merge
// patches; flags win over all.
func TestDropIns(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-a.conf", "maxPods: 20\nclusterDNS: [10.0.0.10, 10.0.0.11]\nevictionHard:\n  memory.available: 200Mi\nsyncFrequency: 30s\n")
	write("20-b/05-c.conf", "maxPods: 30\nclusterDNS: [10.0.0.12]\n")
	write("30-d.conf", "syncFrequency: null\nnodeStatusUpdateFrequency: 20s\n")
	write("40-e.yaml", "maxPods: 99\n") // not .conf: skipped
	base := writeConfig(t, "maxPods: 10\nclusterDomain: cluster.local\n")

	res, err := Parse([]string{"--config", base, "--config-dir", dir, "--cluster-domain", "example.org"}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	c := res.Options.Config
	if c.MaxPods != 30 {
		t.Errorf("maxPods = %d, want 30 (20-b/05-c.conf after 10-a.conf)", c.MaxPods)
	}
	if !slices.Equal(c.ClusterDNS, []string{"10.0.0.12"}) {
		t.Errorf("clusterDNS = %q: a list replaces", c.ClusterDNS)
	}
	// The file's defaults were merged in when it was read, as upstream;
	// the drop-in's map merges key by key.
	if c.EvictionHard["memory.available"] != "200Mi" || c.EvictionHard["nodefs.available"] != "10%" {
		t.Errorf("evictionHard = %v", c.EvictionHard)
	}
	if c.SyncFrequency.Duration != time.Minute {
		t.Errorf("syncFrequency = %v: null brings the default back", c.SyncFrequency)
	}
	// The base was defaulted before the merge: the report frequency does
	// not follow a drop-in's update frequency.
	if c.NodeStatusUpdateFrequency.Duration != 20*time.Second || c.NodeStatusReportFrequency.Duration != 5*time.Minute {
		t.Errorf("node status frequencies %v / %v, want 20s / 5m", c.NodeStatusUpdateFrequency, c.NodeStatusReportFrequency)
	}
	if c.ClusterDomain != "example.org" {
		t.Errorf("clusterDomain = %q: the flag wins", c.ClusterDomain)
	}
	var skipped bool
	for _, w := range res.Warnings {
		if strings.Contains(w.Msg, "Skipped file in drop-in directory") {
			skipped = true
		}
	}
	if !skipped {
		t.Errorf("40-e.yaml not reported as skipped: %+v", res.Warnings)
	}

	write("50-bad.conf", "maxPodz: 1\n")
	if _, err := Parse([]string{"--config-dir", dir}, testEnv()); err == nil || !strings.Contains(err.Error(), `50-bad.conf": field "maxPodz": unknown field`) {
		t.Errorf("unknown field in a drop-in: got %v", err)
	}
	if _, err := Parse([]string{"--config-dir", filepath.Join(dir, "nope")}, testEnv()); err == nil {
		t.Error("missing --config-dir accepted")
	}
}

func TestMergePatch(t *testing.T) {
	target := map[string]any{"a": "b", "c": map[string]any{"d": "e", "f": "g"}, "l": []any{1}}
	patch := map[string]any{"a": "z", "c": map[string]any{"f": nil, "h": "i"}, "l": []any{2, 3}, "n": nil}
	got := mergePatch(target, patch).(map[string]any)
	c := got["c"].(map[string]any)
	if got["a"] != "z" || c["d"] != "e" || c["h"] != "i" || len(got["l"].([]any)) != 2 {
		t.Errorf("mergePatch = %v", got)
	}
	if _, ok := c["f"]; ok {
		t.Errorf("null did not remove f: %v", got)
	}
	if _, ok := got["n"]; ok {
		t.Errorf("null added n: %v", got)
	}
	if mergePatch(target, "x") != "x" {
		t.Error("a non-object patch replaces the target")
	}
}

// /configz shows only what is in force: the fields berth acts on.
func TestInForce(t *testing.T) {
	res, err := Parse([]string{"--config", writeConfig(t, "nodeStatusMaxImages: 10\nclusterDomain: cluster.local\nlogging:\n  format: text\n  verbosity: 3\n"), "--hairpin-mode=none"}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	z := res.Options.Configz.(map[string]any)
	if z["clusterDomain"] != "cluster.local" || z["kind"] != Kind {
		t.Errorf("configz lacks supported fields: %v", z)
	}
	for _, f := range []string{"nodeStatusMaxImages", "hairpinMode", "featureGates", "cpuManagerPolicy"} {
		if _, ok := z[f]; ok {
			t.Errorf("configz reports %s, which berth does not act on", f)
		}
	}
	if logging := z["logging"].(map[string]any); logging["verbosity"] != float64(3) || logging["format"] != "text" {
		t.Errorf("configz logging = %v", logging)
	}
	auth := z["authentication"].(map[string]any)
	if _, ok := auth["webhook"]; !ok {
		t.Errorf("configz authentication = %v", auth)
	}
}
