package stats

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// ErrNotReady is returned until the first housekeeping round is done.
var ErrNotReady = errors.New("stats not collected yet")

// defaultInterface is the interface upstream reports at the top level of
// network stats; the others are listed in Interfaces.
const defaultInterface = "eth0"

// Summary returns the Summary API view of the latest sample. With
// onlyCPUAndMemory it has what upstream's GetCPUAndMemoryStats has (the
// /stats/summary?only_cpu_and_memory=true and /metrics/resource view).
// Every call builds a new value from memory: no file system, no runtime,
// so ctx (there for server.StatsProvider) is not used.
func (c *Collector) Summary(_ context.Context, onlyCPUAndMemory bool) (*statsapi.Summary, error) {
	s := c.snap.Load()
	if s == nil {
		return nil, ErrNotReady
	}
	return buildSummary(s, c.opts.NodeName, onlyCPUAndMemory), nil
}

func buildSummary(s *snapshot, nodeName string, only bool) *statsapi.Summary {
	n := &s.Node
	node := statsapi.NodeStats{
		NodeName:  nodeName,
		StartTime: metav1.NewTime(n.StartTime),
		CPU:       cpuStats(n.CG, n.NanoCores),
		Memory:    memoryStats(n.CG),
		Swap:      swapStats(n.CG),
	}
	for i := range s.System {
		sc := &s.System[i]
		cs := statsapi.ContainerStats{
			Name:      sc.Name,
			StartTime: metav1.NewTime(sc.StartTime),
			CPU:       cpuStats(sc.CG, sc.NanoCores),
			Memory:    memoryStats(sc.CG),
			Swap:      swapStats(sc.CG),
		}
		if !only {
			cs.IO = ioStats(sc.CG)
		}
		node.SystemContainers = append(node.SystemContainers, cs)
	}
	if !only {
		node.IO = ioStats(n.CG)
		node.Network = networkStats(n.Net)
		node.Fs = fsStats(n.RootFs)
		if n.ImageFs != nil || n.ContainerFs != nil {
			node.Runtime = &statsapi.RuntimeStats{ImageFs: fsStats(n.ImageFs), ContainerFs: fsStats(n.ContainerFs)}
		}
		node.Rlimit = &statsapi.RlimitStats{Time: metav1.NewTime(n.RlimitTime)}
		if n.Rlimit.HasMax {
			node.Rlimit.MaxPID = ptr(n.Rlimit.MaxPID)
		}
		if n.Rlimit.HasRun {
			node.Rlimit.NumOfRunningProcesses = ptr(n.Rlimit.Running)
		}
	}
	pods := make([]statsapi.PodStats, 0, len(s.Pods))
	for i := range s.Pods {
		pods = append(pods, podStats(&s.Pods[i], n.RootFs, only))
	}
	return &statsapi.Summary{Node: node, Pods: pods}
}

func podStats(p *podSnap, rootFs *fsSnap, only bool) statsapi.PodStats {
	ps := statsapi.PodStats{
		PodRef:     statsapi.PodReference{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
		StartTime:  metav1.NewTime(p.StartTime),
		Containers: make([]statsapi.ContainerStats, 0, len(p.Containers)),
		CPU:        cpuStats(p.CG, p.NanoCores),
		Memory:     memoryStats(p.CG),
		Swap:       swapStats(p.CG),
	}
	for i := range p.Containers {
		c := &p.Containers[i]
		cs := statsapi.ContainerStats{
			Name:      c.Name,
			StartTime: metav1.NewTime(c.StartTime),
			CPU:       cpuStats(c.CG, c.NanoCores),
			Memory:    memoryStats(c.CG),
			Swap:      swapStats(c.CG),
		}
		if !only {
			cs.IO = ioStats(c.CG)
			cs.Rootfs = fsStats(c.Rootfs)
			if c.Logs != nil {
				cs.Logs = usageFsStats(p.FsTime, p.LogFs, *c.Logs)
			}
		}
		ps.Containers = append(ps.Containers, cs)
	}
	if only {
		return ps
	}
	ps.IO = ioStats(p.CG)
	ps.Network = networkStats(p.Net)
	var processes *uint64
	for i := range p.Containers {
		if n := p.Containers[i].Processes; n != nil {
			processes = ptr(deref(processes) + *n)
		}
	}
	if processes != nil {
		ps.ProcessStats = &statsapi.ProcessStats{ProcessCount: processes}
	}
	for i := range p.Volumes {
		v := &p.Volumes[i]
		info := v.Info
		ps.VolumeStats = append(ps.VolumeStats, statsapi.VolumeStats{
			Name:    v.Name,
			FsStats: *usageFsStats(v.Time, &info, v.Usage),
		})
	}
	// Inline driver volumes count as the pod's ephemeral storage, claims
	// do not (upstream's split of ephemeral and persistent volumes).
	var claims []statsapi.VolumeStats
	for i := range p.DriverVolumes {
		vs := driverVolumeStats(&p.DriverVolumes[i])
		if vs.PVCRef != nil {
			claims = append(claims, vs)
		} else {
			ps.VolumeStats = append(ps.VolumeStats, vs)
		}
	}
	ps.EphemeralStorage = ephemeralStorage(&ps, p, rootFs)
	ps.VolumeStats = append(ps.VolumeStats, claims...)
	return ps
}

// ephemeralStorage is upstream's calcEphemeralStorage: the node file
// system's size, and as used what the pod's containers (writable layers and
// logs), local volumes, pod logs and /etc/hosts take.
func ephemeralStorage(ps *statsapi.PodStats, p *podSnap, rootFs *fsSnap) *statsapi.FsStats {
	out := &statsapi.FsStats{Time: metav1.NewTime(p.FsTime)}
	if rootFs != nil && rootFs.Info.Capacity > 0 {
		out.AvailableBytes = ptr(rootFs.Info.Available)
		out.CapacityBytes = ptr(rootFs.Info.Capacity)
		out.InodesFree = ptr(rootFs.Info.InodesFree)
		out.Inodes = ptr(rootFs.Info.Inodes)
	}
	var used, inodes uint64
	add := func(f *statsapi.FsStats) {
		if f == nil {
			return
		}
		used += deref(f.UsedBytes)
		inodes += deref(f.InodesUsed)
		if f.Time.After(out.Time.Time) {
			out.Time = f.Time
		}
	}
	for i := range ps.Containers {
		add(ps.Containers[i].Rootfs)
		add(ps.Containers[i].Logs)
	}
	for i := range ps.VolumeStats {
		add(&ps.VolumeStats[i].FsStats)
	}
	for _, u := range []*usage{p.PodLogs, p.EtcHosts} {
		if u != nil {
			used += u.Bytes
			inodes += u.Inodes
		}
	}
	out.UsedBytes, out.InodesUsed = &used, &inodes
	return out
}

func cpuStats(s *cgroupSample, nanoCores *uint64) *statsapi.CPUStats {
	if s == nil || !s.HasCPU {
		return nil
	}
	out := &statsapi.CPUStats{
		Time:                 metav1.NewTime(s.Time),
		UsageCoreNanoSeconds: ptr(s.CPUUsage),
		PSI:                  copyPSI(s.CPUPSI),
	}
	if nanoCores != nil {
		out.UsageNanoCores = ptr(*nanoCores)
	}
	return out
}

func memoryStats(s *cgroupSample) *statsapi.MemoryStats {
	if s == nil || !s.HasMemory {
		return nil
	}
	out := &statsapi.MemoryStats{
		Time:            metav1.NewTime(s.Time),
		UsageBytes:      ptr(s.MemUsage),
		WorkingSetBytes: ptr(s.MemWorkingSet),
		RSSBytes:        ptr(s.MemRSS),
		PageFaults:      ptr(s.PgFault),
		MajorPageFaults: ptr(s.PgMajFault),
		PSI:             copyPSI(s.MemoryPSI),
	}
	if s.MemLimit != 0 {
		avail := uint64(0)
		if s.MemLimit > s.MemWorkingSet {
			avail = s.MemLimit - s.MemWorkingSet
		}
		out.AvailableBytes = &avail
	}
	return out
}

func swapStats(s *cgroupSample) *statsapi.SwapStats {
	if s == nil || !s.HasSwap {
		return nil
	}
	out := &statsapi.SwapStats{Time: metav1.NewTime(s.Time), SwapUsageBytes: ptr(s.SwapUsage)}
	if s.SwapLimit != 0 {
		avail := uint64(0)
		if s.SwapLimit > s.SwapUsage {
			avail = s.SwapLimit - s.SwapUsage
		}
		out.SwapAvailableBytes = &avail
	}
	return out
}

func ioStats(s *cgroupSample) *statsapi.IOStats {
	if s == nil || s.IOPSI == nil {
		return nil
	}
	return &statsapi.IOStats{Time: metav1.NewTime(s.Time), PSI: copyPSI(s.IOPSI)}
}

func networkStats(n *netSnap) *statsapi.NetworkStats {
	if n == nil {
		return nil
	}
	out := &statsapi.NetworkStats{Time: metav1.NewTime(n.Time)}
	for _, i := range n.Ifaces {
		is := statsapi.InterfaceStats{
			Name:     i.Name,
			RxBytes:  ptr(i.RxBytes),
			RxErrors: ptr(i.RxErrors),
			TxBytes:  ptr(i.TxBytes),
			TxErrors: ptr(i.TxErrors),
		}
		if i.Name == defaultInterface {
			out.InterfaceStats = is
		}
		out.Interfaces = append(out.Interfaces, is)
	}
	return out
}

// fsStats reports a file system with what its consumer uses of it.
func fsStats(f *fsSnap) *statsapi.FsStats {
	if f == nil {
		return nil
	}
	out := &statsapi.FsStats{Time: metav1.NewTime(f.Time)}
	if f.Info.Capacity > 0 {
		out.AvailableBytes = ptr(f.Info.Available)
		out.CapacityBytes = ptr(f.Info.Capacity)
		out.InodesFree = ptr(f.Info.InodesFree)
		out.Inodes = ptr(f.Info.Inodes)
	}
	if f.Used != nil {
		out.UsedBytes = ptr(*f.Used)
	}
	if f.InodesUsed != nil {
		out.InodesUsed = ptr(*f.InodesUsed)
	}
	return out
}

// usageFsStats reports files' usage on the file system info describes.
func usageFsStats(t time.Time, info *fsInfo, u usage) *statsapi.FsStats {
	f := &fsSnap{Time: t, Used: &u.Bytes, InodesUsed: &u.Inodes}
	if info != nil {
		f.Info = *info
	}
	return fsStats(f)
}

func copyPSI(p *statsapi.PSIStats) *statsapi.PSIStats {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func ptr[T any](v T) *T { return &v }

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
