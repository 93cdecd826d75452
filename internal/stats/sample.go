package stats

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// snapshot is one housekeeping round's readings. It is immutable once
// published: requests read it without locks and build their answers from
// it.
type snapshot struct {
	Time   time.Time
	Node   nodeSnap
	System []systemSnap
	Pods   []podSnap
	// Err is what the round failed to read (nil when everything was read).
	Err error
}

type nodeSnap struct {
	StartTime   time.Time // boot time
	CG          *cgroupSample
	NanoCores   *uint64
	Net         *netSnap
	RootFs      *fsSnap // the file system of RootDir
	ImageFs     *fsSnap
	ContainerFs *fsSnap
	Rlimit      rlimit
	RlimitTime  time.Time
}

// systemSnap is a system container: "kubelet", "runtime", "misc", "pods".
type systemSnap struct {
	Name      string
	Cgroup    string
	StartTime time.Time
	CG        *cgroupSample
	NanoCores *uint64
}

type netSnap struct {
	Time   time.Time
	Ifaces []ifaceStats
}

// fsSnap is a file system and, where known, what a consumer uses of it.
type fsSnap struct {
	Time       time.Time
	Info       fsInfo
	Used       *uint64
	InodesUsed *uint64
}

type podSnap struct {
	UID, Name, Namespace string
	StartTime            time.Time // the sandbox's creation
	Cgroup               string    // "" when not found
	CG                   *cgroupSample
	NanoCores            *uint64
	SandboxID            string
	SandboxCgroup        string
	SandboxCG            *cgroupSample
	Net                  *netSnap
	Containers           []containerSnap
	Volumes              []volumeSnap
	DriverVolumes        []DriverVolume // measured by their drivers (CSI)
	FsTime               time.Time
	LogFs                *fsInfo // the file system of the pod's logs
	PodLogs              *usage  // files of the pod's log dir outside container dirs
	EtcHosts             *usage
}

type containerSnap struct {
	ID, Name, Image string
	StartTime       time.Time // creation, as upstream reports it
	Cgroup          string
	CG              *cgroupSample
	NanoCores       *uint64
	Processes       *uint64
	Rootfs          *fsSnap // writable layer, from the runtime
	Logs            *usage
}

type volumeSnap struct {
	Name      string
	Path      string
	Time      time.Time // of the walk
	Usage     usage
	Truncated bool
	Info      fsInfo
}

func (c *Collector) sampleNode(ctx context.Context, next map[cpuKey]cpuPoint) (nodeSnap, error) {
	now := c.clock.Now()
	n := nodeSnap{StartTime: c.machine.BootTime, RlimitTime: now}
	var errs []error
	if cg, err := readNode(&c.rd, c.cg, c.opts.ProcRoot, now); err != nil {
		errs = append(errs, err)
	} else {
		n.CG = &cg
		n.NanoCores = c.cpuRate(next, cpuKey{kind: "node"}, &cg)
	}
	// berth runs in the node's network namespace.
	if ifs, err := c.rd.readNetDev(filepath.Join(c.opts.ProcRoot, "net", "dev")); err != nil {
		errs = append(errs, err)
	} else {
		n.Net = &netSnap{Time: now, Ifaces: ifs}
	}
	if fi, err := statFS(c.opts.RootDir); err != nil {
		errs = append(errs, err)
	} else {
		c.nameDevice(&fi)
		used, inodesUsed := fi.Usage, fi.Inodes-fi.InodesFree
		n.RootFs = &fsSnap{Time: now, Info: fi, Used: &used, InodesUsed: &inodesUsed}
	}
	n.Rlimit = readRlimit(&c.rd, c.opts.ProcRoot)
	resp, err := c.opts.Runtime.ImageFsInfo(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("image fs info: %w", err))
	} else {
		n.ImageFs = c.runtimeFs(resp.GetImageFilesystems())
		n.ContainerFs = c.runtimeFs(resp.GetContainerFilesystems())
		if n.ContainerFs == nil {
			n.ContainerFs = n.ImageFs // not split: one file system for both
		}
	}
	return n, errors.Join(errs...)
}

// runtimeFs combines the runtime's usage of its first file system with that
// file system's size.
func (c *Collector) runtimeFs(list []*runtimeapi.FilesystemUsage) *fsSnap {
	if len(list) == 0 {
		return nil
	}
	u := list[0]
	s := &fsSnap{Time: criTime(u.GetTimestamp(), c.clock.Now())}
	if v := u.GetUsedBytes(); v != nil {
		used := v.GetValue()
		s.Used = &used
	}
	if v := u.GetInodesUsed(); v != nil {
		inodes := v.GetValue()
		s.InodesUsed = &inodes
	}
	if mp := u.GetFsId().GetMountpoint(); mp != "" {
		if fi, err := statFS(mp); err == nil {
			c.nameDevice(&fi)
			s.Info = fi
		}
	}
	return s
}

func (c *Collector) sampleSystem(next map[cpuKey]cpuPoint) []systemSnap {
	var out []systemSnap
	add := func(name, cgroup string, start time.Time) {
		if cgroup == "" {
			return
		}
		s, err := c.cg.read(&c.rd, cgroup, c.clock.Now())
		if err != nil {
			return // a missing system cgroup is not worth failing a round
		}
		out = append(out, systemSnap{Name: name, Cgroup: cgroup, StartTime: start, CG: &s, NanoCores: c.cpuRate(next, cpuKey{"system", name}, &s)})
	}
	add(statsapi.SystemContainerKubelet, c.opts.KubeletCgroup, c.started)
	add(statsapi.SystemContainerRuntime, c.opts.RuntimeCgroup, c.machine.BootTime)
	add(statsapi.SystemContainerMisc, c.opts.SystemCgroup, c.machine.BootTime)
	add(statsapi.SystemContainerPods, c.opts.CgroupLayout.Pods(), c.machine.BootTime)
	return out
}

// nameDevice fills in fi.Device from mountinfo, re-reading it only for a
// device not seen before.
func (c *Collector) nameDevice(fi *fsInfo) {
	if name, ok := c.devices[fi.dev]; ok {
		fi.Device = name
		return
	}
	devs, err := mountDevices(filepath.Join(c.opts.ProcRoot, "self", "mountinfo"))
	if err != nil {
		return
	}
	c.devices = devs
	if _, ok := devs[fi.dev]; !ok {
		// Remember the miss so that the next round does not re-read.
		c.devices[fi.dev] = ""
	}
	fi.Device = c.devices[fi.dev]
}
