package cm

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// fileWrite is one value written to one cgroup file.
type fileWrite struct {
	// controller names the v1 hierarchy ("cpu", "memory", "pids",
	// "hugetlb"); empty on cgroup v2.
	controller string
	file       string
	value      string
	// optional writes are skipped when the file does not exist (a kernel
	// without the feature).
	optional bool
}

// hierarchies are the v1 controllers berth writes to, in the order it
// creates them.
var hierarchies = []string{"cpu", "memory", "pids", "hugetlb"}

// files turns a configuration into the writes that apply it, in runc's
// order (the CFS period before the quota), on cgroup v1 or v2. nil fields
// write nothing. hugePageSizes are the host's page sizes when the hugetlb
// controller is available, else nil: then huge pages are left alone.
func files(rc ResourceConfig, v2 bool, hugePageSizes []int64) []fileWrite {
	var w []fileWrite
	add := func(controller, v1File, v2File, value string) {
		if v2 {
			w = append(w, fileWrite{file: v2File, value: value})
		} else {
			w = append(w, fileWrite{controller: controller, file: v1File, value: value})
		}
	}
	if rc.CPUShares != nil && *rc.CPUShares != 0 {
		if v2 {
			add("cpu", "", "cpu.weight", strconv.FormatUint(CPUWeight(*rc.CPUShares), 10))
		} else {
			add("cpu", "cpu.shares", "", strconv.FormatUint(*rc.CPUShares, 10))
		}
	}
	quota, period := deref(rc.CPUQuota), derefU(rc.CPUPeriod)
	if v2 {
		if quota != 0 || period != 0 {
			v := "max"
			if quota > 0 {
				v = strconv.FormatInt(quota, 10)
			}
			if period != 0 {
				v += " " + strconv.FormatUint(period, 10)
			}
			add("cpu", "", "cpu.max", v)
		}
	} else {
		if period != 0 {
			add("cpu", "cpu.cfs_period_us", "", strconv.FormatUint(period, 10))
		}
		if quota != 0 {
			add("cpu", "cpu.cfs_quota_us", "", strconv.FormatInt(quota, 10))
		}
	}
	if m := deref(rc.Memory); m != 0 {
		add("memory", "memory.limit_in_bytes", "memory.max", limitValue(m, v2))
	}
	if rc.PidsLimit != nil && *rc.PidsLimit != 0 {
		add("pids", "pids.max", "pids.max", limitValue(*rc.PidsLimit, true))
	}
	if rc.HugePageLimit != nil {
		for _, size := range hugePageSizes {
			unit := hugePageUnit(size)
			v := strconv.FormatInt(rc.HugePageLimit[size], 10) // 0 when not asked for, as upstream
			add("hugetlb", "hugetlb."+unit+".limit_in_bytes", "hugetlb."+unit+".max", v)
			if v2 {
				w = append(w, fileWrite{file: "hugetlb." + unit + ".rsvd.max", value: v, optional: true})
			}
		}
	}
	if v2 {
		for _, k := range slices.Sorted(maps.Keys(rc.Unified)) {
			w = append(w, fileWrite{file: k, value: rc.Unified[k]})
		}
	}
	return w
}

// limitValue renders a byte or pid limit: -1 is "max" on v2 (and for
// pids.max on v1), "-1" in v1's memory.limit_in_bytes.
func limitValue(v int64, maxWord bool) string {
	if v < 0 && maxWord {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// hugePageUnit names a page size as the hugetlb controller's files do
// ("2MB", "1GB"), upstream's HugePageUnitSizeFromByteSize.
func hugePageUnit(size int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	i := 0
	for size%1024 == 0 && i < len(units)-1 {
		size /= 1024
		i++
	}
	return fmt.Sprintf("%d%s", size, units[i])
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefU(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
