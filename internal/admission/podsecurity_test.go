package admission

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParsePodSecurityLevel(t *testing.T) {
	for in, want := range map[string]string{
		"privileged":        "privileged:latest",
		"baseline":          "baseline:latest",
		"restricted:v1.30":  "restricted:v1.30",
		"baseline:latest":   "baseline:latest",
		"":                  "error: pod security level \"\"",
		"strict":            "error: pod security level \"strict\": must be one of",
		"baseline:1.30":     "error: pod security version \"1.30\": must be \"latest\" or \"v1.x\"",
		"baseline:":         "error: pod security version \"\"",
		"Baseline":          "error: pod security level \"Baseline\"",
		"restricted:v2.0":   "error: pod security version \"v2.0\"",
		"restricted:v1.0x":  "error: pod security version \"v1.0x\"",
		"restricted:v1.999": "restricted:v1.999",
	} {
		lv, err := ParsePodSecurityLevel(in)
		got := lv.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("ParsePodSecurityLevel(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPodSecurityAdmit(t *testing.T) {
	yes, no := true, false
	pod := func(edit func(*v1.PodSpec)) *v1.Pod {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "kube-system"},
			Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
		}
		if edit != nil {
			edit(&p.Spec)
		}
		return p
	}
	privileged := pod(func(s *v1.PodSpec) { s.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: &yes} })
	hostAll := pod(func(s *v1.PodSpec) {
		s.HostNetwork, s.HostPID = true, true
		s.Volumes = []v1.Volume{{Name: "root", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/"}}}}
	})
	restrictedOK := pod(func(s *v1.PodSpec) {
		s.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes,
			SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}}
		s.Containers[0].SecurityContext = &v1.SecurityContext{AllowPrivilegeEscalation: &no,
			Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}}}
	})

	for _, tc := range []struct {
		name, level string
		pod         *v1.Pod
		want        string // "" admits; else the message
	}{
		{"privileged level admits all", "privileged", privileged, ""},
		{"baseline admits a plain pod", "baseline", pod(nil), ""},
		{"baseline refuses a privileged container", "baseline", privileged,
			`violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`},
		{"every violated check is named, in the library's order", "baseline:v1.30", hostAll,
			`violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume "root")`},
		{"restricted refuses a plain pod", "restricted", pod(nil),
			`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ` +
				`unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ` +
				`runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ` +
				`seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`},
		{"restricted admits a hardened pod", "restricted", restrictedOK, ""},
		// Before v1.19 restricted did not ask for a seccomp profile.
		{"an older version has fewer checks", "restricted:v1.18",
			pod(func(s *v1.PodSpec) {
				s.SecurityContext = &v1.PodSecurityContext{RunAsNonRoot: &yes}
				s.Containers[0].SecurityContext = &v1.SecurityContext{AllowPrivilegeEscalation: &no}
			}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lv, err := ParsePodSecurityLevel(tc.level)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := NewPodSecurity(lv)
			if err != nil {
				t.Fatal(err)
			}
			r := ps.Admit(tc.pod)
			if tc.want == "" {
				if !r.Admit {
					t.Fatalf("refused: %s", r.Message)
				}
				return
			}
			if r.Admit || r.Reason != ReasonPodSecurity || r.Message != tc.want {
				t.Errorf("got %+v\nwant message %s", r, tc.want)
			}
		})
	}
}
