package eviction

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func qty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		kc      kubeletconfig.KubeletConfiguration
		want    []string // signal/hard-or-grace/minreclaim
		wantErr string
	}{
		{
			name: "hard, allocatable copy, containerfs dropped, 0% ignored",
			kc: kubeletconfig.KubeletConfiguration{
				EvictionHard:           map[string]string{"memory.available": "100Mi", "nodefs.available": "10%", "containerfs.available": "10%", "pid.available": "0%"},
				EvictionMinimumReclaim: map[string]string{"memory.available": "50Mi"},
				EnforceNodeAllocatable: []string{"pods"},
			},
			want: []string{"memory.available/0s/50Mi", "nodefs.available/0s/-", "allocatableMemory.available/0s/50Mi"},
		},
		{
			name: "soft with its grace period",
			kc: kubeletconfig.KubeletConfiguration{
				EvictionSoft:            map[string]string{"imagefs.available": "20%"},
				EvictionSoftGracePeriod: map[string]string{"imagefs.available": "1m30s"},
			},
			want: []string{"imagefs.available/1m30s/-"},
		},
		{
			name:    "soft without grace period",
			kc:      kubeletconfig.KubeletConfiguration{EvictionSoft: map[string]string{"memory.available": "1Gi"}},
			wantErr: "grace period must be specified for the soft eviction threshold memory.available",
		},
		{
			name:    "unknown signal",
			kc:      kubeletconfig.KubeletConfiguration{EvictionHard: map[string]string{"cpu.available": "1"}},
			wantErr: "unsupported eviction signal cpu.available",
		},
		{
			name:    "negative",
			kc:      kubeletconfig.KubeletConfiguration{EvictionHard: map[string]string{"memory.available": "-1Mi"}},
			wantErr: "must be positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(&tt.kc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, th := range cfg.Thresholds {
				mr := "-"
				if th.MinReclaim != nil {
					mr = th.MinReclaim.Quantity.String()
				}
				got = append(got, string(th.Signal)+"/"+th.GracePeriod.String()+"/"+mr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("thresholds %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStep(t *testing.T) {
	t0 := time.Unix(1000, 0)
	hardMem := Threshold{Signal: SignalMemoryAvailable, Value: Value{Quantity: qty("1Gi")}, MinReclaim: &Value{Quantity: qty("512Mi")}}
	softDisk := Threshold{Signal: SignalNodeFsAvailable, Value: Value{Percentage: 0.1}, GracePeriod: time.Minute}
	cfg := Config{Thresholds: []Threshold{softDisk, hardMem}, PressureTransitionPeriod: 5 * time.Minute}
	gi := int64(1 << 30)
	obs := func(memAvail, diskAvail int64, at time.Time) observations {
		return observations{
			SignalMemoryAvailable:  {available: memAvail, capacity: 8 * gi, time: at},
			SignalNodeFsAvailable:  {available: diskAvail, capacity: 100 * gi, time: at},
			SignalNodeFsInodesFree: {available: 1000, capacity: 2000, time: at},
		}
	}
	type round struct {
		at         time.Duration
		mem, disk  int64
		statsAt    time.Duration // when the stats were taken
		conditions []v1.NodeConditionType
		act        []int
	}
	tests := []struct {
		name   string
		rounds []round
	}{
		{"nothing met", []round{{at: 0, mem: 4 * gi, disk: 50 * gi}}},
		{"hard memory acts at once, MemoryPressure", []round{
			{at: 0, mem: gi / 2, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}, act: []int{1}},
		}},
		{"soft disk: condition at once, acts after its grace period", []round{
			{at: 0, mem: 4 * gi, disk: 5 * gi, conditions: []v1.NodeConditionType{v1.NodeDiskPressure}},
			{at: 30 * time.Second, statsAt: 30 * time.Second, mem: 4 * gi, disk: 5 * gi, conditions: []v1.NodeConditionType{v1.NodeDiskPressure}},
			{at: time.Minute, statsAt: time.Minute, mem: 4 * gi, disk: 5 * gi, conditions: []v1.NodeConditionType{v1.NodeDiskPressure}, act: []int{0}},
		}},
		{"memory first when both act", []round{
			{at: 0, mem: gi / 2, disk: 5 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure}, act: []int{1}},
			{at: time.Minute, statsAt: time.Minute, mem: gi / 2, disk: 5 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure}, act: []int{1, 0}},
		}},
		{"met until the minimum reclaim is satisfied too", []round{
			{at: 0, mem: gi / 2, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}, act: []int{1}},
			// above the threshold but not above threshold + min reclaim
			{at: 10 * time.Second, statsAt: 10 * time.Second, mem: gi + gi/4, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}, act: []int{1}},
			// reclaimed enough: nothing to act on; the condition stays for the transition period
			{at: 20 * time.Second, statsAt: 20 * time.Second, mem: 2 * gi, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}},
			{at: 5*time.Second + 5*time.Minute, statsAt: 5 * time.Minute, mem: 2 * gi, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}},
			{at: 10*time.Second + 5*time.Minute, statsAt: 5 * time.Minute, mem: 2 * gi, disk: 50 * gi},
		}},
		{"stale stats do not act twice", []round{
			{at: 0, mem: gi / 2, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}, act: []int{1}},
			{at: 10 * time.Second, statsAt: 0, mem: gi / 2, disk: 50 * gi, conditions: []v1.NodeConditionType{v1.NodeMemoryPressure}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st state
			for i, r := range tt.rounds {
				var v verdict
				st, v = step(cfg, st, obs(r.mem, r.disk, t0.Add(r.statsAt)), t0.Add(r.at))
				if !slices.Equal(v.conditions, r.conditions) || !slices.Equal(v.act, r.act) {
					t.Fatalf("round %d: conditions %v act %v, want %v %v", i, v.conditions, v.act, r.conditions, r.act)
				}
			}
		})
	}
}

func TestObserve(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	i := func(v int64) *int64 { return &v }
	now := metav1.NewTime(time.Unix(1000, 0))
	s := &statsapi.Summary{Node: statsapi.NodeStats{
		Memory: &statsapi.MemoryStats{Time: now, AvailableBytes: u(300), WorkingSetBytes: u(700)},
		SystemContainers: []statsapi.ContainerStats{
			{Name: statsapi.SystemContainerKubelet, Memory: &statsapi.MemoryStats{AvailableBytes: u(1), WorkingSetBytes: u(1)}},
			{Name: statsapi.SystemContainerPods, Memory: &statsapi.MemoryStats{Time: now, AvailableBytes: u(100), WorkingSetBytes: u(400)}},
		},
		Fs:      &statsapi.FsStats{Time: now, AvailableBytes: u(10), CapacityBytes: u(100), InodesFree: u(5), Inodes: u(50)},
		Runtime: &statsapi.RuntimeStats{ImageFs: &statsapi.FsStats{Time: now, AvailableBytes: u(20), CapacityBytes: u(200)}},
		Rlimit:  &statsapi.RlimitStats{Time: now, MaxPID: i(4096), NumOfRunningProcesses: i(96)},
	}}
	got := observe(s)
	want := observations{
		SignalMemoryAvailable:            {300, 1000, now.Time},
		SignalAllocatableMemoryAvailable: {100, 500, now.Time},
		SignalNodeFsAvailable:            {10, 100, now.Time},
		SignalNodeFsInodesFree:           {5, 50, now.Time},
		SignalImageFsAvailable:           {20, 200, now.Time},
		SignalPIDAvailable:               {4000, 4096, now.Time},
	}
	if len(got) != len(want) {
		t.Fatalf("observations %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %+v, want %+v", k, got[k], w)
		}
	}
}
