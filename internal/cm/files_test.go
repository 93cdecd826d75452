package cm

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/utils/ptr"
)

// show prints a configuration with its pointers followed.
func show(rc ResourceConfig) string {
	var b strings.Builder
	f := func(name string, p any) {
		switch v := p.(type) {
		case *uint64:
			if v != nil {
				fmt.Fprintf(&b, "%s=%d ", name, *v)
			}
		case *int64:
			if v != nil {
				fmt.Fprintf(&b, "%s=%d ", name, *v)
			}
		}
	}
	f("shares", rc.CPUShares)
	f("quota", rc.CPUQuota)
	f("period", rc.CPUPeriod)
	f("memory", rc.Memory)
	f("pids", rc.PidsLimit)
	fmt.Fprintf(&b, "hugepages=%v unified=%v", rc.HugePageLimit, rc.Unified)
	return b.String()
}

func TestFiles(t *testing.T) {
	guaranteed := ResourceConfig{
		CPUShares: ptr.To[uint64](512), CPUQuota: ptr.To[int64](50000), CPUPeriod: ptr.To[uint64](100000),
		Memory: ptr.To[int64](128 << 20), PidsLimit: ptr.To[int64](100),
		HugePageLimit: map[int64]int64{},
	}
	unlimited := ResourceConfig{CPUShares: ptr.To[uint64](1024), CPUQuota: ptr.To[int64](-1), CPUPeriod: ptr.To[uint64](100000), PidsLimit: ptr.To[int64](-1)}
	tests := []struct {
		name  string
		rc    ResourceConfig
		v2    bool
		sizes []int64
		want  []string
	}{
		{
			name: "v1", rc: guaranteed, sizes: []int64{2 << 20, 1 << 30},
			want: []string{
				"cpu/cpu.shares=512", "cpu/cpu.cfs_period_us=100000", "cpu/cpu.cfs_quota_us=50000",
				"memory/memory.limit_in_bytes=134217728", "pids/pids.max=100",
				"hugetlb/hugetlb.2MB.limit_in_bytes=0", "hugetlb/hugetlb.1GB.limit_in_bytes=0",
			},
		},
		{
			name: "v2", rc: guaranteed, v2: true,
			want: []string{"cpu.weight=20", "cpu.max=50000 100000", "memory.max=134217728", "pids.max=100"},
		},
		{
			name: "v1 unlimited", rc: unlimited,
			want: []string{"cpu/cpu.shares=1024", "cpu/cpu.cfs_period_us=100000", "cpu/cpu.cfs_quota_us=-1", "pids/pids.max=max"},
		},
		{
			name: "v2 unlimited", rc: unlimited, v2: true,
			want: []string{"cpu.weight=39", "cpu.max=max 100000", "pids.max=max"},
		},
		{
			name: "best effort v2", rc: ResourceConfig{CPUShares: ptr.To[uint64](2)}, v2: true,
			want: []string{"cpu.weight=1"},
		},
		{
			name: "v2 huge pages and unified", v2: true, sizes: []int64{2 << 20},
			rc:   ResourceConfig{HugePageLimit: map[int64]int64{2 << 20: 1 << 62}, Unified: map[string]string{"memory.low": "0", "memory.high": "5"}},
			want: []string{"hugetlb.2MB.max=4611686018427387904", "hugetlb.2MB.rsvd.max=4611686018427387904?", "memory.high=5", "memory.low=0"},
		},
		{name: "nothing", rc: ResourceConfig{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, w := range files(tt.rc, tt.v2, tt.sizes) {
				s := w.file + "=" + w.value
				if w.controller != "" {
					s = w.controller + "/" + s
				}
				if w.optional {
					s += "?"
				}
				got = append(got, s)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("files =\n %q\nwant\n %q", got, tt.want)
			}
		})
	}
}
