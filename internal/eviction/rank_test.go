package eviction

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

type podOpt func(*v1.Pod)

func mkPod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(res v1.ResourceName, q string) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{res: resource.MustParse(q)}
	}
}

func limits(res v1.ResourceName, q string) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Resources.Limits = v1.ResourceList{res: resource.MustParse(q)}
	}
}

func priority(n int32) podOpt { return func(p *v1.Pod) { p.Spec.Priority = &n } }

func u64(v uint64) *uint64 { return &v }

type usage struct {
	mem, rootfs, logs, procs uint64
	volumes                  map[string]uint64
	total                    uint64
}

func statsOf(m map[string]usage) []statsapi.PodStats {
	var out []statsapi.PodStats
	for name, u := range m {
		ps := statsapi.PodStats{
			PodRef: statsapi.PodReference{Name: name, Namespace: "ns", UID: name},
			Memory: &statsapi.MemoryStats{WorkingSetBytes: u64(u.mem)},
			Containers: []statsapi.ContainerStats{{
				Name:   "c",
				Memory: &statsapi.MemoryStats{WorkingSetBytes: u64(u.mem)},
				Rootfs: &statsapi.FsStats{UsedBytes: u64(u.rootfs), InodesUsed: u64(1)},
				Logs:   &statsapi.FsStats{UsedBytes: u64(u.logs), InodesUsed: u64(1)},
			}},
			ProcessStats:     &statsapi.ProcessStats{ProcessCount: u64(u.procs)},
			EphemeralStorage: &statsapi.FsStats{UsedBytes: u64(u.total)},
		}
		for v, b := range u.volumes {
			ps.VolumeStats = append(ps.VolumeStats, statsapi.VolumeStats{Name: v, FsStats: statsapi.FsStats{UsedBytes: u64(b)}})
		}
		out = append(out, ps)
	}
	return out
}

func names(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestRank(t *testing.T) {
	const mi = 1 << 20
	emptyDir := func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	}
	tests := []struct {
		name      string
		signal    Signal
		dedicated bool
		pods      []*v1.Pod
		usage     map[string]usage
		want      []string
	}{
		{
			name:   "memory: over requests first, then lower priority, then usage above request",
			signal: SignalMemoryAvailable,
			pods: []*v1.Pod{
				mkPod("guaranteed-under", requests(v1.ResourceMemory, "100Mi")),
				mkPod("besteffort-small"),
				mkPod("besteffort-big"),
				mkPod("burstable-over-high-prio", requests(v1.ResourceMemory, "10Mi"), priority(1000)),
				mkPod("no-stats"),
			},
			usage: map[string]usage{
				"guaranteed-under":         {mem: 50 * mi},
				"besteffort-small":         {mem: 5 * mi},
				"besteffort-big":           {mem: 80 * mi},
				"burstable-over-high-prio": {mem: 500 * mi},
			},
			want: []string{"no-stats", "besteffort-big", "besteffort-small", "burstable-over-high-prio", "guaranteed-under"},
		},
		{
			name:   "pids: priority, then processes",
			signal: SignalPIDAvailable,
			pods:   []*v1.Pod{mkPod("few"), mkPod("many"), mkPod("important", priority(10))},
			usage:  map[string]usage{"few": {procs: 2}, "many": {procs: 200}, "important": {procs: 1000}},
			want:   []string{"many", "few", "important"},
		},
		{
			name:   "nodefs on a shared file system: layers, logs and local volumes count",
			signal: SignalNodeFsAvailable,
			pods: []*v1.Pod{
				mkPod("layer", requests(v1.ResourceEphemeralStorage, "1Gi")),
				mkPod("volume", emptyDir),
				mkPod("logs"),
			},
			usage: map[string]usage{
				"layer":  {rootfs: 100 * mi},
				"volume": {volumes: map[string]uint64{"scratch": 300 * mi}},
				"logs":   {logs: 200 * mi},
			},
			want: []string{"volume", "logs", "layer"},
		},
		{
			name:      "imagefs on its own file system: only writable layers count",
			signal:    SignalImageFsAvailable,
			dedicated: true,
			pods:      []*v1.Pod{mkPod("volume", emptyDir), mkPod("layer")},
			usage: map[string]usage{
				"volume": {volumes: map[string]uint64{"scratch": 300 * mi}},
				"layer":  {rootfs: 100 * mi},
			},
			want: []string{"layer", "volume"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods := slices.Clone(tt.pods)
			rankFor(tt.signal, pods, statsByUID(statsOf(tt.usage)), tt.dedicated)
			if got := names(pods); !slices.Equal(got, tt.want) {
				t.Fatalf("ranked %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvictionMessage(t *testing.T) {
	const mi = 1 << 20
	cfg := Config{Thresholds: []Threshold{{Signal: SignalMemoryAvailable, Value: Value{Percentage: 0.5}}}}
	obs := observations{SignalMemoryAvailable: {available: 100 * mi, capacity: 1000 * mi}}
	pod := mkPod("hog", requests(v1.ResourceMemory, "10Mi"))
	msg, ann := evictionMessage(v1.ResourceMemory, pod, statsByUID(statsOf(map[string]usage{"hog": {mem: 50 * mi}})), cfg.Thresholds, []int{0}, obs)
	want := "The node was low on resource: memory. Threshold quantity: 500Mi, available: 100Mi. Container c was using 50Mi, request is 10Mi, has larger consumption of memory. "
	if msg != want {
		t.Fatalf("message\n%q, want\n%q", msg, want)
	}
	if ann[offendingContainersKey] != "c" || ann[offendingContainersUsageKey] != "50Mi" || ann[starvedResourceKey] != "memory" {
		t.Fatalf("annotations %v", ann)
	}
	// A BestEffort pod: request is 0.
	msg, _ = evictionMessage(v1.ResourceMemory, mkPod("be"), statsByUID(statsOf(map[string]usage{"be": {mem: 2 * mi}})), cfg.Thresholds, []int{0}, obs)
	if want := "The node was low on resource: memory. Threshold quantity: 500Mi, available: 100Mi. Container c was using 2Mi, request is 0, has larger consumption of memory. "; msg != want {
		t.Fatalf("message\n%q, want\n%q", msg, want)
	}
}

func TestStorageViolation(t *testing.T) {
	const mi = 1 << 20
	sized := func(limit string) podOpt {
		return func(p *v1.Pod) {
			q := resource.MustParse(limit)
			p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &q}}}}
		}
	}
	tests := []struct {
		name      string
		pod       *v1.Pod
		usage     usage
		dedicated bool
		want      string
	}{
		{"emptyDir under its limit", mkPod("p", sized("10Mi")), usage{volumes: map[string]uint64{"scratch": 5 * mi}}, false, ""},
		{"emptyDir over its limit", mkPod("p", sized("10Mi")), usage{volumes: map[string]uint64{"scratch": 11 * mi}}, false,
			`Usage of EmptyDir volume "scratch" exceeds the limit "10Mi". `},
		{"pod total over the containers' limits", mkPod("p", limits(v1.ResourceEphemeralStorage, "20Mi")), usage{total: 30 * mi}, false,
			"Pod ephemeral local storage usage exceeds the total limit of containers 20Mi. "},
		{"container layer and logs over its limit", mkPod("p", limits(v1.ResourceEphemeralStorage, "20Mi")), usage{rootfs: 15 * mi, logs: 10 * mi, total: 19 * mi}, false,
			`Container c exceeded its local ephemeral storage limit "20Mi". `},
		{"layer on a dedicated image fs does not count", mkPod("p", limits(v1.ResourceEphemeralStorage, "20Mi")), usage{rootfs: 15 * mi, logs: 10 * mi, total: 19 * mi}, true, ""},
		{"no limits", mkPod("p"), usage{rootfs: 1 << 40}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := statsOf(map[string]usage{"p": tt.usage})[0]
			if _, got := storageViolation(tt.pod, st, tt.dedicated); got != tt.want {
				t.Fatalf("violation %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEvictionGrace(t *testing.T) {
	soft := Threshold{Signal: SignalMemoryAvailable, GracePeriod: time.Minute}
	hard := Threshold{Signal: SignalMemoryAvailable}
	own := func(s int64) podOpt { return func(p *v1.Pod) { p.Spec.TerminationGracePeriodSeconds = &s } }
	tests := []struct {
		name string
		t    Threshold
		max  int64
		pod  *v1.Pod
		want int64
	}{
		{"hard: immediate", hard, 60, mkPod("p", own(30)), 1},
		{"soft: the pod's when shorter", soft, 60, mkPod("p", own(30)), 30},
		{"soft: the maximum when shorter", soft, 10, mkPod("p", own(30)), 10},
		{"soft: the maximum without a pod value", soft, 10, mkPod("p"), 10},
		{"soft: negative maximum defers to the pod", soft, -1, mkPod("p", own(45)), 45},
		{"soft: default maximum 0", soft, 0, mkPod("p", own(30)), 0},
	}
	for _, tt := range tests {
		if got := evictionGrace(tt.t, tt.max, tt.pod); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}
