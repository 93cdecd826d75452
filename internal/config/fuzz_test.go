package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile: any --config file is loaded, defaulted and validated
// into Options or refused with an error, never a panic; standalone or
// with a kubeconfig (different defaults apply).
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"), false)
	f.Add([]byte(`{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","evictionHard":{"memory.available":"5%"}}`), true)
	f.Fuzz(func(t *testing.T, data []byte, withKubeconfig bool) {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--config", path}
		if withKubeconfig {
			args = append(args, "--kubeconfig", "/etc/kubernetes/kubelet.conf")
		}
		if res, err := Parse(args, testEnv()); err == nil && res == nil {
			t.Fatal("Parse returned neither a result nor an error")
		}
	})
}

// FuzzFlags: any command line (one argument per line) parses or is
// refused, never panics.
func FuzzFlags(f *testing.F) {
	f.Add("--max-pods=10\n--node-ip=10.0.0.1,fd00::1\n--eviction-hard=memory.available<5%")
	f.Add("--cgroup-driver\nsystemd\n--feature-gates=UserNamespacesSupport=true,Bogus=false")
	f.Add("--register-with-taints=a=b:NoSchedule\n--node-labels=x=y\n--system-reserved=cpu=100m,memory=1Gi")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\n")
		if res, err := Parse(args, testEnv()); err == nil && res == nil {
			t.Fatal("Parse returned neither a result nor an error")
		}
	})
}

// FuzzDecode: the KubeletConfiguration decoder alone (strict YAML/JSON,
// type meta, unknown fields), faster than a whole Parse.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cfg, _, err := Decode(data); err == nil && cfg == nil {
			t.Fatal("Decode returned neither a configuration nor an error")
		}
	})
}
