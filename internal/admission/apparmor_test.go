package admission

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAppArmor(t *testing.T) {
	profile := func(t v1.AppArmorProfileType, name string) *v1.AppArmorProfile {
		p := &v1.AppArmorProfile{Type: t}
		if name != "" || t == v1.AppArmorProfileTypeLocalhost {
			p.LocalhostProfile = &name
		}
		return p
	}
	podWith := func(pod, ctr *v1.AppArmorProfile, annotations map[string]string) *v1.Pod {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: annotations},
			Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app"}}},
		}
		if pod != nil {
			p.Spec.SecurityContext = &v1.PodSecurityContext{AppArmorProfile: pod}
		}
		if ctr != nil {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{AppArmorProfile: ctr}
		}
		return p
	}
	const notEnabled = "Cannot enforce AppArmor: AppArmor is not enabled on the host"
	tests := []struct {
		name    string
		enabled bool
		pod     *v1.Pod
		want    string // message; "" admits
	}{
		{name: "no profile, no AppArmor", pod: podWith(nil, nil, nil)},
		{name: "unconfined, no AppArmor", pod: podWith(profile(v1.AppArmorProfileTypeUnconfined, ""), profile(v1.AppArmorProfileTypeUnconfined, ""), nil)},
		{name: "pod runtime/default, no AppArmor", pod: podWith(profile(v1.AppArmorProfileTypeRuntimeDefault, ""), nil, nil), want: notEnabled},
		{name: "container localhost, no AppArmor", pod: podWith(nil, profile(v1.AppArmorProfileTypeLocalhost, "k8s-x"), nil), want: notEnabled},
		{name: "annotation, no AppArmor", pod: podWith(nil, nil, map[string]string{"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}), want: notEnabled},
		{name: "annotation unconfined, no AppArmor", pod: podWith(nil, nil, map[string]string{"container.apparmor.security.beta.kubernetes.io/app": "unconfined"})},
		{name: "runtime/default with AppArmor", enabled: true, pod: podWith(profile(v1.AppArmorProfileTypeRuntimeDefault, ""), nil, nil)},
		{name: "localhost with AppArmor", enabled: true, pod: podWith(nil, profile(v1.AppArmorProfileTypeLocalhost, "k8s-x"), nil)},
		{name: "empty localhost name", enabled: true, pod: podWith(nil, profile(v1.AppArmorProfileTypeLocalhost, " "), nil),
			want: `Cannot enforce AppArmor: invalid empty AppArmor profile name: "&AppArmorProfile{Type:Localhost,LocalhostProfile:* ,}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewAppArmor(tt.enabled).Admit(tt.pod)
			if tt.want == "" {
				if !r.Admit {
					t.Errorf("rejected: %s %s", r.Reason, r.Message)
				}
				return
			}
			if r.Admit || r.Reason != "AppArmor" || r.Message != tt.want {
				t.Errorf("got %v %q %q, want rejected AppArmor %q", r.Admit, r.Reason, r.Message, tt.want)
			}
		})
	}
	// A running pod is not checked again.
	running := podWith(profile(v1.AppArmorProfileTypeRuntimeDefault, ""), nil, nil)
	running.Status.Phase = v1.PodRunning
	if r := NewAppArmor(false).Admit(running); !r.Admit {
		t.Errorf("running pod rejected: %s", r.Message)
	}
}
