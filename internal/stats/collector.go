package stats

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/cm"
	"github.com/berth-dev/berth/internal/container"
)

// Runtime is what the collector needs from the container runtime.
type Runtime interface {
	// ListPods returns the runtime's pods by UID (internal/runtime.Manager).
	ListPods(ctx context.Context) (map[types.UID]*container.PodStatus, error)
	// ListContainerStats is CRI ListContainerStats without a filter: the
	// writable layer usage of each container, and CPU and memory as the
	// runtime sees them (used when a container's cgroup cannot be found).
	ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error)
	// ImageFsInfo is CRI ImageFsInfo.
	ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error)
}

// Options configures a Collector. Zero values take the defaults noted.
type Options struct {
	Runtime Runtime
	// CgroupRoot is where the cgroup file system is mounted
	// (/sys/fs/cgroup). cgroup v1 or v2 is detected from it.
	CgroupRoot string
	// CgroupDriver is the runtime's driver, "cgroupfs" (default) or
	// "systemd": it decides where pod cgroups are (see cgroup_paths.go).
	CgroupDriver string
	// CgroupLayout names the node's pod cgroups (cgroupRoot,
	// cgroupsPerQOS); nil is upstream's default layout for CgroupDriver.
	CgroupLayout *cm.Layout
	// KubeletCgroup, RuntimeCgroup and SystemCgroup name the cgroups of
	// the node's system containers (--kubelet-cgroups, --runtime-cgroups,
	// --system-cgroups). An empty KubeletCgroup means berth's own cgroup,
	// unless that is the root; the others are left out when empty.
	KubeletCgroup, RuntimeCgroup, SystemCgroup string
	// RootDir (/var/lib/kubelet) is the node file system and holds pod
	// volumes; PodLogsDir (/var/log/pods) holds container logs.
	RootDir, PodLogsDir string
	NodeName            string
	// HousekeepingInterval is how often everything is sampled (10 s, as
	// cAdvisor's housekeeping).
	HousekeepingInterval time.Duration
	// VolumeStatsAggPeriod is how often a volume's directory tree is
	// walked (volumeStatsAggPeriod, 1 min); between walks its last usage
	// is reported.
	VolumeStatsAggPeriod time.Duration
	// DriverVolumes, if set, measures the pods' CSI volumes.
	DriverVolumes DriverVolumes
	// ProcRoot is /proc; tests point it elsewhere.
	ProcRoot string
	Clock    clock.WithTicker
}

// volumeWalkBudget bounds the entries one volume walk visits, so a volume
// with millions of files costs a bounded amount per period (its usage is
// then a lower bound).
const volumeWalkBudget = 100_000

// Collector samples the node, its pods and containers once per
// housekeeping interval and serves the latest sample from memory: the
// Summary API and the /metrics/cadvisor and /metrics/resource collectors
// never touch the file system or the runtime.
type Collector struct {
	opts    Options
	clock   clock.WithTicker
	cg      cgroupFS
	v2      bool
	machine machineInfo
	started time.Time // berth's start: the "kubelet" system container's

	snap atomic.Pointer[snapshot]
	// sampled is signalled after each round (for the eviction manager);
	// refresh asks Run for a round now.
	sampled, refresh chan struct{}

	// Housekeeping state, owned by the goroutine that samples. Every map is
	// rebuilt from what the last round saw, so gone pods drop out.
	rd         fileReader // its buffers, reused every round
	prevCPU    map[cpuKey]cpuPoint
	podCgroups map[types.UID]string
	sbCgroups  map[string]string // sandbox ID -> cgroup
	ctrCgroups map[string]string // container ID -> cgroup
	netPIDs    map[string]int    // sandbox ID -> a process in its netns
	volumes    map[string]volumeSnap
	driverVols map[types.UID]driverVolumeSnap
	devices    map[uint64]string
	failing    map[string]bool // which sources are failing, to log changes once
	// volumeRoundBudget is how many entries a round's volume walks may
	// visit before the rest wait for the next round.
	volumeRoundBudget int
}

// New returns a Collector; Run starts sampling.
func New(opts Options) *Collector {
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	cg, err := newCgroupFS(opts.CgroupRoot)
	if err != nil {
		// Containers then fall back to the runtime's numbers and the node
		// to /proc; housekeeping reports the missing cgroups.
		cg = noCgroups{err: err}
	}
	return newCollector(opts, cg)
}

func newCollector(opts Options, cg cgroupFS) *Collector {
	if opts.CgroupDriver == "" {
		opts.CgroupDriver = "cgroupfs"
	}
	if opts.CgroupLayout == nil {
		l := cm.NewLayout("/", true, opts.CgroupDriver)
		opts.CgroupLayout = &l
	}
	if opts.RootDir == "" {
		opts.RootDir = "/var/lib/kubelet"
	}
	if opts.PodLogsDir == "" {
		opts.PodLogsDir = "/var/log/pods"
	}
	if opts.HousekeepingInterval <= 0 {
		opts.HousekeepingInterval = 10 * time.Second
	}
	if opts.VolumeStatsAggPeriod <= 0 {
		opts.VolumeStatsAggPeriod = time.Minute
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	_, v2 := cg.(*cgroupV2)
	if opts.KubeletCgroup == "" {
		if self := selfCgroup(opts.ProcRoot, v2); self != "/" {
			opts.KubeletCgroup = self
		}
	}
	return &Collector{
		opts:       opts,
		clock:      opts.Clock,
		cg:         cg,
		v2:         v2,
		machine:    readMachineInfo(opts.ProcRoot, goruntime.NumCPU()),
		started:    opts.Clock.Now(),
		prevCPU:    map[cpuKey]cpuPoint{},
		podCgroups: map[types.UID]string{},
		sbCgroups:  map[string]string{},
		ctrCgroups: map[string]string{},
		netPIDs:    map[string]int{},
		volumes:    map[string]volumeSnap{},
		driverVols: map[types.UID]driverVolumeSnap{},
		devices:    map[uint64]string{},
		failing:    map[string]bool{},

		volumeRoundBudget: 2 * volumeWalkBudget,
		sampled:           make(chan struct{}, 1),
		refresh:           make(chan struct{}, 1),
	}
}

// Sampled is signalled (without blocking: one pending signal at most)
// after every housekeeping round, so that a consumer evaluates each sample
// once without a loop of its own.
func (c *Collector) Sampled() <-chan struct{} { return c.sampled }

// Refresh asks for a housekeeping round now; requests made while one is
// pending are merged.
func (c *Collector) Refresh() {
	select {
	case c.refresh <- struct{}{}:
	default:
	}
}

// DedicatedImageFs reports whether the runtime's image file system is
// another device than the node's (RootDir's), from the latest sample.
func (c *Collector) DedicatedImageFs() (bool, error) {
	s := c.snap.Load()
	if s == nil || s.Node.RootFs == nil || s.Node.ImageFs == nil || s.Node.ImageFs.Info.dev == 0 {
		return false, errors.New("file systems not sampled yet")
	}
	return s.Node.RootFs.Info.dev != s.Node.ImageFs.Info.dev, nil
}

// Run samples at once and then every housekeeping interval until ctx ends.
func (c *Collector) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	mode := "v1"
	if c.v2 {
		mode = "v2"
	}
	if nc, ok := c.cg.(noCgroups); ok {
		logger.Error(nc.err, "Cannot read cgroups; container stats come from the runtime alone")
		mode = "none"
	}
	logger.Info("Starting stats collection", "interval", c.opts.HousekeepingInterval, "cgroups", mode, "cgroupDriver", c.opts.CgroupDriver)
	t := c.clock.NewTicker(c.opts.HousekeepingInterval)
	defer t.Stop()
	for {
		c.housekeep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-c.refresh:
		}
	}
}

// housekeep takes one sample of everything and publishes it.
func (c *Collector) housekeep(ctx context.Context) {
	timeout := max(c.opts.HousekeepingInterval, 5*time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer c.rd.closeDirs()
	prev := c.snap.Load()
	s := &snapshot{Time: c.clock.Now()}
	var errs []error
	report := func(source string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
		}
		c.noteFailure(ctx, source, err)
	}
	nextCPU := make(map[cpuKey]cpuPoint, len(c.prevCPU))

	node, err := c.sampleNode(ctx, nextCPU)
	report("node", err)
	s.Node = node
	s.System = c.sampleSystem(nextCPU)

	pods, err := c.opts.Runtime.ListPods(ctx)
	report("runtime pods", err)
	if err != nil {
		// Keep serving the pods of the last good sample (with their old
		// timestamps) rather than reporting that every pod vanished.
		if prev != nil {
			s.Pods = prev.Pods
		}
		for k, p := range c.prevCPU {
			if _, ok := nextCPU[k]; !ok {
				nextCPU[k] = p
			}
		}
	} else {
		criStats, err := c.opts.Runtime.ListContainerStats(ctx)
		report("runtime container stats", err)
		s.Pods = c.samplePods(ctx, pods, criStats, s.Node.RootFs, nextCPU)
	}
	c.prevCPU = nextCPU
	s.Err = errors.Join(errs...)
	c.snap.Store(s)
	select {
	case c.sampled <- struct{}{}:
	default:
	}
}

// noteFailure logs when a source starts or stops failing, not every round.
func (c *Collector) noteFailure(ctx context.Context, source string, err error) {
	logger := klog.FromContext(ctx)
	switch {
	case err != nil && !c.failing[source]:
		c.failing[source] = true
		logger.Error(err, "Stats collection failed; serving what is available", "source", source)
	case err == nil && c.failing[source]:
		delete(c.failing, source)
		logger.Info("Stats collection recovered", "source", source)
	}
}

// cpuKey names what a CPU reading is of: kind "node", "system" (id is
// the system container's name), "pod" (the UID) or "container" (the ID).
// A struct rather than one string spares building the string every round.
type cpuKey struct {
	kind, id string
}

// cpuPoint is a cumulative CPU reading, kept for the next rate.
type cpuPoint struct {
	time  time.Time
	usage uint64
}

// cpuRate records s under key and returns the usage in nanocores since the
// previous reading of key, nil when there is none (or the counter reset).
func (c *Collector) cpuRate(next map[cpuKey]cpuPoint, key cpuKey, s *cgroupSample) *uint64 {
	if s == nil || !s.HasCPU {
		return nil
	}
	next[key] = cpuPoint{time: s.Time, usage: s.CPUUsage}
	p, ok := c.prevCPU[key]
	if !ok || !s.Time.After(p.time) || s.CPUUsage < p.usage {
		return nil
	}
	rate := uint64(float64(s.CPUUsage-p.usage) / float64(s.Time.Sub(p.time).Nanoseconds()) * float64(time.Second))
	return &rate
}

// noCgroups stands in when the cgroup file system cannot be read.
type noCgroups struct{ err error }

func (n noCgroups) read(*fileReader, string, time.Time) (cgroupSample, error) {
	return cgroupSample{}, n.err
}
func (n noCgroups) children(string) ([]string, error)        { return nil, n.err }
func (n noCgroups) procs(*fileReader, string) ([]int, error) { return nil, n.err }
