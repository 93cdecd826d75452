package cm

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestLayout(t *testing.T) {
	const uid = "12-34"
	tests := []struct {
		name                 string
		l                    Layout
		pods, burstable, pod string
		guaranteed, reserved string
		candidates           int
	}{
		{
			name: "cgroupfs", l: NewLayout("/", true, "cgroupfs"),
			pods: "/kubepods", burstable: "/kubepods/burstable", pod: "/kubepods/besteffort/pod12-34",
			guaranteed: "/kubepods/pod12-34", reserved: "/kube-reserved", candidates: 3,
		},
		{
			name: "systemd", l: NewLayout("/", true, "systemd"),
			pods: "/kubepods.slice", burstable: "/kubepods.slice/kubepods-burstable.slice",
			pod:        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_34.slice",
			guaranteed: "/kubepods.slice/kubepods-pod12_34.slice", reserved: "/kube.slice/kube-reserved.slice", candidates: 3,
		},
		{
			name: "cgroupRoot", l: NewLayout("/berth/node", true, "cgroupfs"),
			pods: "/berth/node/kubepods", burstable: "/berth/node/kubepods/burstable", pod: "/berth/node/kubepods/besteffort/pod12-34",
			guaranteed: "/berth/node/kubepods/pod12-34", reserved: "/kube-reserved", candidates: 3,
		},
		{
			name: "systemd cgroupRoot", l: NewLayout("/berth", true, "systemd"),
			pods: "/berth.slice/berth-kubepods.slice", burstable: "/berth.slice/berth-kubepods.slice/berth-kubepods-burstable.slice",
			pod:        "/berth.slice/berth-kubepods.slice/berth-kubepods-besteffort.slice/berth-kubepods-besteffort-pod12_34.slice",
			guaranteed: "/berth.slice/berth-kubepods.slice/berth-kubepods-pod12_34.slice", reserved: "/kube.slice/kube-reserved.slice", candidates: 3,
		},
		{
			// Without QoS cgroups every pod's parent is the root, as
			// upstream's no-op pod container manager.
			name: "no cgroupsPerQOS", l: NewLayout("/pods", false, "cgroupfs"),
			pods: "/pods", burstable: "/pods", pod: "/pods", guaranteed: "/pods", reserved: "/kube-reserved",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.Pods(); got != tt.pods {
				t.Errorf("Pods = %s, want %s", got, tt.pods)
			}
			if got := tt.l.QOS(v1.PodQOSBurstable); got != tt.burstable {
				t.Errorf("QOS(Burstable) = %s, want %s", got, tt.burstable)
			}
			if got := tt.l.QOS(v1.PodQOSGuaranteed); got != tt.pods {
				t.Errorf("QOS(Guaranteed) = %s, want %s", got, tt.pods)
			}
			if got := tt.l.Pod(uid, v1.PodQOSBestEffort); got != tt.pod {
				t.Errorf("Pod(BestEffort) = %s, want %s", got, tt.pod)
			}
			if got := tt.l.Pod(uid, v1.PodQOSGuaranteed); got != tt.guaranteed {
				t.Errorf("Pod(Guaranteed) = %s, want %s", got, tt.guaranteed)
			}
			name := "/kube-reserved"
			if tt.l.Systemd {
				name = "/kube.slice/kube-reserved.slice"
			}
			if got := tt.l.ParseName(name); got != tt.reserved {
				t.Errorf("ParseName(%s) = %s, want %s", name, got, tt.reserved)
			}
			if got := tt.l.PodCandidates(uid); len(got) != tt.candidates {
				t.Errorf("PodCandidates = %v, want %d", got, tt.candidates)
			}
		})
	}
	// An empty cgroupRoot without QoS cgroups leaves the runtime at the
	// hierarchy's root, as upstream passes it.
	if got := NewLayout("", false, "cgroupfs").Pod(uid, v1.PodQOSBurstable); got != "/" {
		t.Errorf("no root, no QoS: parent %s, want /", got)
	}
	if got, want := NewLayout("/", true, "cgroupfs").PodCandidates(uid), []string{
		"/kubepods/burstable/pod12-34", "/kubepods/besteffort/pod12-34", "/kubepods/pod12-34",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("PodCandidates = %v, want %v", got, want)
	}
}
