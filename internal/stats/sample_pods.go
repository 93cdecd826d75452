package stats

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// ephemeralVolumePlugins are the volume directories under
// RootDir/pods/<uid>/volumes that hold node-local data, walked for usage.
// Others (network and CSI volumes) are not the node's to measure.
var ephemeralVolumePlugins = []string{
	"kubernetes.io~empty-dir",
	"kubernetes.io~configmap",
	"kubernetes.io~secret",
	"kubernetes.io~projected",
	"kubernetes.io~downward-api",
}

// podRound is the state one round of pod sampling builds; it replaces the
// collector's caches at the end, which drops every gone pod and container.
type podRound struct {
	next       map[cpuKey]cpuPoint
	podCgroups map[types.UID]string
	sbCgroups  map[string]string
	ctrCgroups map[string]string
	netPIDs    map[string]int // -1: the sandbox uses the node's namespace
	volumes    map[string]volumeSnap
	driverVols map[types.UID]driverVolumeSnap
	fs         map[string]*fsInfo // statfs by path, once per round
	walkBudget int
	selfNetns  string
	criByID    map[string]*runtimeapi.ContainerStats
}

func (c *Collector) samplePods(ctx context.Context, pods map[types.UID]*container.PodStatus, cri []*runtimeapi.ContainerStats, rootFs *fsSnap, next map[cpuKey]cpuPoint) []podSnap {
	r := &podRound{
		next:       next,
		podCgroups: make(map[types.UID]string, len(pods)),
		sbCgroups:  make(map[string]string, len(pods)),
		ctrCgroups: make(map[string]string, len(c.ctrCgroups)),
		netPIDs:    make(map[string]int, len(pods)),
		volumes:    make(map[string]volumeSnap, len(c.volumes)),
		driverVols: make(map[types.UID]driverVolumeSnap, len(c.driverVols)),
		fs:         map[string]*fsInfo{},
		walkBudget: c.volumeRoundBudget,
		criByID:    make(map[string]*runtimeapi.ContainerStats, len(cri)),
	}
	r.selfNetns, _ = os.Readlink(filepath.Join(c.opts.ProcRoot, "self", "ns", "net"))
	for _, s := range cri {
		r.criByID[s.GetAttributes().GetId()] = s
	}
	list := make([]*container.PodStatus, 0, len(pods))
	for _, p := range pods {
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b *container.PodStatus) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
	})
	out := make([]podSnap, 0, len(list))
	for _, p := range list {
		if ps, ok := c.samplePod(ctx, r, p); ok {
			out = append(out, ps)
		}
	}
	c.podCgroups, c.sbCgroups, c.ctrCgroups, c.volumes = r.podCgroups, r.sbCgroups, r.ctrCgroups, r.volumes
	c.netPIDs, c.driverVols = r.netPIDs, r.driverVols
	return out
}

// pickSandbox is the pod's ready sandbox, else its newest (upstream
// removeTerminatedPods).
func pickSandbox(p *container.PodStatus) *container.SandboxStatus {
	for _, sb := range p.Sandboxes {
		if sb.State == container.SandboxReady {
			return sb
		}
	}
	return p.LatestSandbox()
}

func (c *Collector) samplePod(ctx context.Context, r *podRound, p *container.PodStatus) (podSnap, bool) {
	sb := pickSandbox(p)
	running := p.RunningContainers()
	if sb == nil || (sb.State != container.SandboxReady && len(running) == 0) {
		return podSnap{}, false // terminated: nothing to measure
	}
	ps := podSnap{UID: string(p.UID), Name: p.Name, Namespace: p.Namespace, StartTime: sb.CreatedAt, SandboxID: sb.ID}

	// The pod cgroup's children, listed at most once, and only when a
	// sandbox or container is not where last round found it.
	var children []string
	listed := false
	child := func(id string) (string, bool) {
		if !listed {
			children, _ = c.cg.children(ps.Cgroup)
			listed = true
		}
		name, ok := childFor(children, id)
		return path.Join(ps.Cgroup, name), ok
	}

	if cg, s, ok := c.findPodCgroup(p.UID); ok {
		ps.Cgroup, ps.CG = cg, &s
		ps.NanoCores = c.cpuRate(r.next, cpuKey{"pod", ps.UID}, &s)
		r.podCgroups[p.UID] = cg
		ps.SandboxCgroup, ps.SandboxCG = c.readChild(c.sbCgroups, r.sbCgroups, sb.ID, child)
	}
	if sb.State == container.SandboxReady && ps.SandboxCgroup != "" {
		ps.Net = c.sandboxNetwork(r, sb.ID, ps.SandboxCgroup)
	}

	for _, cs := range running {
		ps.Containers = append(ps.Containers, c.sampleContainer(r, &ps, cs, child))
	}
	slices.SortFunc(ps.Containers, func(a, b containerSnap) int { return cmp.Compare(a.Name, b.Name) })

	c.samplePodFs(ctx, r, &ps)
	ps.DriverVolumes = c.sampleDriverVolumes(ctx, r, p.UID)
	return ps, true
}

// findPodCgroup reads the pod's cgroup, from last round's place or, for a
// new pod or one whose cgroup went away, by trying each QoS class's.
func (c *Collector) findPodCgroup(uid types.UID) (string, cgroupSample, bool) {
	now := c.clock.Now()
	if cg, ok := c.podCgroups[uid]; ok {
		if s, err := c.cg.read(&c.rd, cg, now); err == nil {
			return cg, s, true
		}
	}
	for _, cg := range c.opts.CgroupLayout.PodCandidates(uid) {
		if s, err := c.cg.read(&c.rd, cg, now); err == nil {
			return cg, s, true
		}
	}
	return "", cgroupSample{}, false
}

// readChild reads the child cgroup of a pod's that belongs to a sandbox or
// container: where last round found it (last), else where child finds it;
// next remembers it for the next round. It returns the cgroup when found,
// even if reading it failed, and its sample when read.
func (c *Collector) readChild(last, next map[string]string, id string, child func(string) (string, bool)) (string, *cgroupSample) {
	if cg, ok := last[id]; ok {
		if s, err := c.cg.read(&c.rd, cg, c.clock.Now()); err == nil {
			next[id] = cg
			return cg, &s
		}
	}
	cg, ok := child(id)
	if !ok {
		return "", nil
	}
	if s, err := c.cg.read(&c.rd, cg, c.clock.Now()); err == nil {
		next[id] = cg
		return cg, &s
	}
	return cg, nil
}

func (c *Collector) sampleContainer(r *podRound, ps *podSnap, cs *container.ContainerStatus, child func(string) (string, bool)) containerSnap {
	out := containerSnap{ID: cs.ID, Name: cs.Name, Image: cs.Image, StartTime: cs.CreatedAt}
	if ps.Cgroup != "" {
		if cg, s := c.readChild(c.ctrCgroups, r.ctrCgroups, cs.ID, child); s != nil {
			out.Cgroup, out.CG = cg, s
		}
	}
	if out.Cgroup != "" {
		// Processes, not tasks: cAdvisor's count, from the container's
		// (leaf) cgroup.
		if pids, err := c.cg.procs(&c.rd, out.Cgroup); err == nil {
			n := uint64(len(pids))
			out.Processes = &n
		}
	}
	cri := r.criByID[cs.ID]
	if out.CG == nil && cri != nil {
		out.CG = criSample(cri, c.clock.Now())
	}
	out.NanoCores = c.cpuRate(r.next, cpuKey{"container", cs.ID}, out.CG)
	if out.NanoCores == nil && out.Cgroup == "" {
		if v := cri.GetCpu().GetUsageNanoCores(); v != nil {
			n := v.GetValue()
			out.NanoCores = &n
		}
	}
	if wl := cri.GetWritableLayer(); wl != nil {
		fsn := &fsSnap{Time: criTime(wl.GetTimestamp(), c.clock.Now())}
		if v := wl.GetUsedBytes(); v != nil {
			used := v.GetValue()
			fsn.Used = &used
		}
		if v := wl.GetInodesUsed(); v != nil {
			inodes := v.GetValue()
			fsn.InodesUsed = &inodes
		}
		if fi := c.statFSOnce(r, wl.GetFsId().GetMountpoint()); fi != nil {
			fsn.Info = *fi
		}
		out.Rootfs = fsn
	}
	return out
}

// criSample converts the runtime's CPU and memory numbers for a container
// whose cgroup was not found.
func criSample(s *runtimeapi.ContainerStats, now time.Time) *cgroupSample {
	cpu, mem := s.GetCpu(), s.GetMemory()
	if cpu == nil && mem == nil {
		return nil
	}
	out := &cgroupSample{}
	if cpu != nil && cpu.GetUsageCoreNanoSeconds() != nil {
		out.Time = criTime(cpu.GetTimestamp(), now)
		out.HasCPU, out.CPUUsage = true, cpu.GetUsageCoreNanoSeconds().GetValue()
	}
	if mem != nil {
		if out.Time.IsZero() {
			out.Time = criTime(mem.GetTimestamp(), now)
		}
		out.HasMemory = true
		out.MemWorkingSet = mem.GetWorkingSetBytes().GetValue()
		out.MemUsage = mem.GetUsageBytes().GetValue()
		out.MemRSS = mem.GetRssBytes().GetValue()
		out.PgFault = mem.GetPageFaults().GetValue()
		out.PgMajFault = mem.GetMajorPageFaults().GetValue()
		out.HierPgFault, out.HierPgMajFault = out.PgFault, out.PgMajFault
		if a := mem.GetAvailableBytes(); a != nil && a.GetValue() > 0 {
			out.MemLimit = a.GetValue() + out.MemWorkingSet
		}
	}
	return out
}

// sandboxNetwork reads the sandbox's interfaces through a process in its
// network namespace (the pause process); nil for host-network pods, whose
// traffic is the node's.
func (c *Collector) sandboxNetwork(r *podRound, sandboxID, sandboxCgroup string) *netSnap {
	pid, ok := c.netPIDs[sandboxID]
	if pid == -1 {
		r.netPIDs[sandboxID] = -1
		return nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		if !ok {
			pids, err := c.cg.procs(&c.rd, sandboxCgroup)
			if err != nil || len(pids) == 0 {
				return nil
			}
			pid = pids[0]
			ns, err := os.Readlink(filepath.Join(c.opts.ProcRoot, strconv.Itoa(pid), "ns", "net"))
			if err == nil && r.selfNetns != "" && ns == r.selfNetns {
				r.netPIDs[sandboxID] = -1
				return nil
			}
		}
		now := c.clock.Now()
		ifs, err := c.rd.readNetDev(filepath.Join(c.opts.ProcRoot, strconv.Itoa(pid), "net", "dev"))
		if err == nil {
			r.netPIDs[sandboxID] = pid
			return &netSnap{Time: now, Ifaces: ifs}
		}
		ok = false // the process is gone: find the sandbox's current one
	}
	return nil
}

// samplePodFs measures the pod's logs, /etc/hosts and local volumes.
func (c *Collector) samplePodFs(ctx context.Context, r *podRound, ps *podSnap) {
	ps.FsTime = c.clock.Now()
	logDir := filepath.Join(c.opts.PodLogsDir, ps.Namespace+"_"+ps.Name+"_"+ps.UID)
	if podLogs, ctrLogs, err := logDirUsage(logDir); err == nil {
		ps.PodLogs = &podLogs
		ps.LogFs = c.statFSOnce(r, c.opts.PodLogsDir)
		for i := range ps.Containers {
			if u, ok := ctrLogs[ps.Containers[i].Name]; ok {
				ps.Containers[i].Logs = &u
			}
		}
	}
	podDir := filepath.Join(c.opts.RootDir, "pods", ps.UID)
	if u, ok := fileUsage(filepath.Join(podDir, "etc-hosts")); ok {
		ps.EtcHosts = &u
	}
	// One listing of volumes/ rather than an open of every plugin's
	// directory, most of which a pod does not have.
	plugins, _ := os.ReadDir(filepath.Join(podDir, "volumes"))
	for _, plugin := range ephemeralVolumePlugins {
		if !slices.ContainsFunc(plugins, func(e os.DirEntry) bool { return e.Name() == plugin }) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(podDir, "volumes", plugin))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if v, ok := c.sampleVolume(ctx, r, e.Name(), filepath.Join(podDir, "volumes", plugin, e.Name())); ok {
				ps.Volumes = append(ps.Volumes, v)
			}
		}
	}
}

// sampleVolume walks a volume at most once per VolumeStatsAggPeriod, and
// starts walks only while the round's budget lasts; otherwise its last walk
// stands (a volume never walked waits for the next round).
func (c *Collector) sampleVolume(ctx context.Context, r *podRound, name, dir string) (volumeSnap, bool) {
	now := c.clock.Now()
	v, seen := c.volumes[dir]
	due := !seen || now.Sub(v.Time) >= c.opts.VolumeStatsAggPeriod
	if due && r.walkBudget <= 0 {
		if !seen {
			return volumeSnap{}, false
		}
		due = false
	}
	if due {
		u, truncated, err := dirUsage(dir, volumeWalkBudget)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				klog.FromContext(ctx).V(2).Info("Volume usage walk failed", "path", dir, "err", err)
			}
			return volumeSnap{}, false
		}
		if truncated {
			klog.FromContext(ctx).V(2).Info("Volume has more entries than one walk visits; its usage is a lower bound", "path", dir, "entries", u.Inodes)
		}
		r.walkBudget -= int(u.Inodes)
		v = volumeSnap{Name: name, Path: dir, Time: now, Usage: u, Truncated: truncated}
	}
	if fi := c.statFSOnce(r, dir); fi != nil {
		v.Info = *fi
	}
	r.volumes[dir] = v
	return v, true
}

// statFSOnce statfs'es a path once per round.
func (c *Collector) statFSOnce(r *podRound, p string) *fsInfo {
	if p == "" {
		return nil
	}
	if fi, ok := r.fs[p]; ok {
		return fi
	}
	fi, err := statFS(p)
	if err != nil {
		r.fs[p] = nil
		return nil
	}
	c.nameDevice(&fi)
	r.fs[p] = &fi
	return &fi
}

// criTime is a CRI timestamp, or now when the runtime left it unset (as
// containerd does before it first measures a writable layer).
func criTime(ns int64, now time.Time) time.Time {
	if ns <= 0 {
		return now
	}
	return time.Unix(0, ns)
}
