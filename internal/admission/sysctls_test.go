package admission

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
)

func TestSafeSysctls(t *testing.T) {
	always := []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
		"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
	if got := SafeSysctls(nil); !reflect.DeepEqual(got, always) {
		t.Errorf("unknown kernel: %v", got)
	}
	got := SafeSysctls(version.MustParseGeneric("4.5.0"))
	want := append(append([]string{}, always...), "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
		"net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kernel 4.5: %v", got)
	}
	if got := SafeSysctls(version.MustParseGeneric("6.1.0")); len(got) != len(safeSysctls) {
		t.Errorf("kernel 6.1: %d of %d safe sysctls", len(got), len(safeSysctls))
	}
}

func TestNewSysctlsRejectsBadPatterns(t *testing.T) {
	for pattern, wantErr := range map[string]string{
		"kernel.msg*":            "",
		"net.core.somaxconn":     "",
		"net/ipv4/*":             "",
		"fs.mqueue.*":            "",
		"kernel.domainname":      "",
		"Kernel.msgmax":          "must have at most 253 characters and match regex",
		"net..x":                 "must have at most 253 characters and match regex",
		"*":                      "", // matches the pattern grammar, but...
		"vm.swappiness":          `the sysctls "vm.swappiness" are not known to be namespaced`,
		"kernel.*":               `the sysctls "kernel." are not known to be namespaced`,
		strings.Repeat("a", 254): "must have at most 253 characters",
	} {
		_, err := NewSysctls([]string{pattern})
		if pattern == "*" {
			// ...namespaced nowhere.
			wantErr = `the sysctls "" are not known to be namespaced`
		}
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("NewSysctls(%q) = %v, want error %q", pattern, err, wantErr)
		}
	}
}

func TestSysctlsAdmit(t *testing.T) {
	allow, err := NewSysctls(append(SafeSysctls(version.MustParseGeneric("5.10.0")), "kernel.msg*", "net.core.somaxconn", "user.max_user_namespaces"))
	if err != nil {
		t.Fatal(err)
	}
	f := false
	pod := func(edit func(*v1.PodSpec), sysctls ...string) *v1.Pod {
		p := &v1.Pod{}
		if len(sysctls) > 0 {
			p.Spec.SecurityContext = &v1.PodSecurityContext{}
		}
		for _, s := range sysctls {
			p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, v1.Sysctl{Name: s, Value: "1"})
		}
		if edit != nil {
			edit(&p.Spec)
		}
		return p
	}
	hostNet := func(s *v1.PodSpec) { s.HostNetwork = true }
	hostIPC := func(s *v1.PodSpec) { s.HostIPC = true }
	ownUsers := func(s *v1.PodSpec) { s.HostUsers = &f }
	tests := []struct {
		name    string
		pod     *v1.Pod
		wantMsg string // "" admits
	}{
		{"no security context", pod(nil), ""},
		{"no sysctls", &v1.Pod{Spec: v1.PodSpec{SecurityContext: &v1.PodSecurityContext{}}}, ""},
		{"safe", pod(nil, "kernel.shm_rmid_forced", "net.ipv4.tcp_syncookies"), ""},
		{"safe with slashes", pod(nil, "kernel/shm_rmid_forced"), ""},
		{"unsafe, not allowed", pod(nil, "kernel.sem"), `forbidden sysctl: "kernel.sem" not allowlisted`},
		{"the conformance spec's", pod(nil, "kernel.msgmax"), ""},
		{"allowed by prefix", pod(nil, "kernel.msgmnb"), ""},
		{"allowed by name", pod(nil, "net.core.somaxconn"), ""},
		{"first failure reported", pod(nil, "kernel.shm_rmid_forced", "vm.swappiness", "kernel.sem"), `forbidden sysctl: "vm.swappiness" not allowlisted`},
		{"net with hostNetwork", pod(hostNet, "net.core.somaxconn"), `forbidden sysctl: "net.core.somaxconn" not allowed with host Net enabled`},
		{"ipc with hostIPC", pod(hostIPC, "kernel.shm_rmid_forced"), `forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host IPC enabled`},
		{"ipc prefix with hostIPC", pod(hostIPC, "kernel.msgmax"), `forbidden sysctl: "kernel.msgmax" not allowed with host IPC enabled`},
		{"net with hostIPC", pod(hostIPC, "net.core.somaxconn"), ""},
		{"user namespace shared", pod(nil, "user.max_user_namespaces"), `forbidden sysctl: "user.max_user_namespaces" not allowed with host User enabled`},
		{"user namespace own", pod(ownUsers, "user.max_user_namespaces"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := allow.Admit(tt.pod)
			if tt.wantMsg == "" {
				if !r.Admit {
					t.Errorf("rejected: %+v", r)
				}
				return
			}
			if r.Admit || r.Reason != ReasonSysctlForbidden || r.Message != tt.wantMsg {
				t.Errorf("Admit = %+v, want reason %s message %q", r, ReasonSysctlForbidden, tt.wantMsg)
			}
		})
	}

	// Without allowedUnsafeSysctls the conformance spec's sysctl is refused.
	safeOnly, err := NewSysctls(SafeSysctls(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r := safeOnly.Admit(pod(nil, "kernel.msgmax")); r.Admit || r.Message != `forbidden sysctl: "kernel.msgmax" not allowlisted` {
		t.Errorf("kernel.msgmax on a default node: %+v", r)
	}
}
