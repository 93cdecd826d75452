package runtime

import (
	"bufio"
	"bytes"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/cm"
)

// nodeConfig is everything about the node and berth's settings that the
// spec-to-CRI conversions need. The conversions are pure functions of a pod
// and a nodeConfig, so tests build one by hand.
type nodeConfig struct {
	nodeName      string
	nodeIPs       []string
	rootDir       string
	podLogsDir    string
	clusterDNS    []string
	clusterDomain string
	resolvConf    string // "" means the pod gets no host DNS settings
	// seccompDefault: RuntimeDefault for containers without a profile.
	seccompDefault bool
	// cgroups names the pods' cgroups (internal/cm).
	cgroups cm.Layout
	// disableCPUQuota is cpuCFSQuota false; cfsPeriod is
	// cpuCFSQuotaPeriod in µs, 0 for the default 100 ms.
	disableCPUQuota bool
	cfsPeriod       int64
	// nodeHosts is the node's hosts file, which host-network pods start
	// from; "" is /etc/hosts (tests set another).
	nodeHosts string

	cpuCapacityMilli int64
	memoryCapacity   int64
	// minOOMScoreAdj is the lowest oom_score_adj berth may hand out: its own.
	// Without CAP_SYS_RESOURCE nobody can go below their own value, and
	// asking the runtime to would fail the container; the runtime is
	// expected to clamp as well (containerd restrict_oom_score_adj).
	minOOMScoreAdj int64
	// cgroupV2 is set on a unified cgroup v2 host.
	cgroupV2 bool
}

// cpuPeriod is the CFS period containers get, in µs.
func (n *nodeConfig) cpuPeriod() int64 {
	if n.cfsPeriod > 0 {
		return n.cfsPeriod
	}
	return cm.QuotaPeriod
}

func (n *nodeConfig) etcHosts() string {
	if n.nodeHosts == "" {
		return etcHostsPath
	}
	return n.nodeHosts
}

// readNodeResources fills in what the node has, from /proc. Failures leave
// conservative values: berth must start on odd hosts.
func (n *nodeConfig) readNodeResources() {
	n.cpuCapacityMilli = int64(goruntime.NumCPU()) * 1000
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		n.memoryCapacity = memTotal(b)
	}
	if n.memoryCapacity <= 0 {
		n.memoryCapacity = 1 << 30
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		n.cgroupV2 = true
	}
	n.minOOMScoreAdj = -1000
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			n.minOOMScoreAdj = v
		}
	}
}

// memTotal parses MemTotal (in kB) out of /proc/meminfo, in bytes.
func memTotal(meminfo []byte) int64 {
	s := bufio.NewScanner(bytes.NewReader(meminfo))
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
