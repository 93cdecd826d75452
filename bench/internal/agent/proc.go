package agent

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Usage is a process's footprint at one moment.
type Usage struct {
	At      time.Time
	RSS     float64 // bytes (VmRSS)
	RSSAnon float64 // of which anonymous memory (heap, stacks): RssAnon
	CPU     float64 // user + system CPU seconds since the process started
	Threads int
}

// ReadUsage reads pid's RSS and CPU time from /proc.
func ReadUsage(pid int) (Usage, error) {
	u := Usage{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	if u.CPU, err = parseStatCPU(stat); err != nil {
		return u, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	u.RSS, u.RSSAnon, u.Threads, err = parseStatus(status)
	return u, err
}

// parseStatCPU returns utime+stime in seconds from a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ")".
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ")": state is field 3 of the line, utime 14 and stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// parseStatus returns VmRSS and RssAnon in bytes and the thread count.
func parseStatus(status []byte) (rss, anon float64, threads int, err error) {
	var haveRSS bool
	kB := func(v string) (float64, error) {
		kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64)
		return kb * 1024, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			if rss, err = kB(v); err != nil {
				return 0, 0, 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			haveRSS = true
		case "RssAnon":
			if anon, err = kB(v); err != nil {
				return 0, 0, 0, fmt.Errorf("RssAnon %q: %w", v, err)
			}
		case "Threads":
			threads, _ = strconv.Atoi(v)
		}
	}
	if !haveRSS {
		return 0, 0, 0, fmt.Errorf("no VmRSS in status")
	}
	return rss, anon, threads, nil
}

// NodeCPU returns the CPU seconds the whole machine has spent busy (every
// state of /proc/stat's cpu line but idle and iowait) since boot.
func NodeCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseNodeCPU(b)
}

func parseNodeCPU(stat []byte) (float64, error) {
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("malformed /proc/stat %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user and nice.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return float64(busy) / clockTicks, nil
}
