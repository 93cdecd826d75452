package stats

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The /metrics/cadvisor families berth serves: the ones upstream's embedded
// cAdvisor produces for the cgroups berth measures, with cAdvisor's names,
// help, types and labels. Every series carries the kubelet's base labels
// (container, id, image, name, namespace, pod): id is the cgroup, name the
// runtime's container ID. Series exist for the node ("/"), the system
// containers, each pod cgroup, each pod's sandbox (which carries the pod's
// network) and each running container.
var cadvisorBaseLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

// cadvisorSeries is one cgroup as cAdvisor would report it.
type cadvisorSeries struct {
	labels    []string // values of cadvisorBaseLabels
	cg        *cgroupSample
	net       *netSnap
	fs        []cadvisorFs
	start     time.Time
	processes *uint64
}

type cadvisorFs struct {
	time                             time.Time
	device                           string
	usage, limit, inodes, inodesFree uint64
}

type cadvisorValue struct {
	v      float64
	labels []string // values of the metric's extra labels
	t      time.Time
}

// cadvisorMetric is one family computed from a series.
type cadvisorMetric struct {
	desc  *prometheus.Desc
	vt    prometheus.ValueType
	stamp bool // samples carry their read time (spec metrics do not)
	get   func(s *cadvisorSeries) []cadvisorValue
}

func newCadvisorMetric(name, help string, vt prometheus.ValueType, extra []string, stamp bool, get func(s *cadvisorSeries) []cadvisorValue) cadvisorMetric {
	labels := append(append([]string{}, cadvisorBaseLabels...), extra...)
	return cadvisorMetric{desc: prometheus.NewDesc(name, help, labels, nil), vt: vt, stamp: stamp, get: get}
}

// cgValue returns one value of the series' cgroup sample when has holds.
func cgValue(has func(*cgroupSample) bool, f func(*cgroupSample) float64) func(*cadvisorSeries) []cadvisorValue {
	return func(s *cadvisorSeries) []cadvisorValue {
		if s.cg == nil || !has(s.cg) {
			return nil
		}
		return []cadvisorValue{{v: f(s.cg), t: s.cg.Time}}
	}
}

func hasCPU(s *cgroupSample) bool    { return s.HasCPU }
func hasMemory(s *cgroupSample) bool { return s.HasMemory }

func netValues(f func(i *ifaceStats) uint64) func(*cadvisorSeries) []cadvisorValue {
	return func(s *cadvisorSeries) []cadvisorValue {
		if s.net == nil {
			return nil
		}
		out := make([]cadvisorValue, 0, len(s.net.Ifaces))
		for i := range s.net.Ifaces {
			out = append(out, cadvisorValue{v: float64(f(&s.net.Ifaces[i])), labels: []string{s.net.Ifaces[i].Name}, t: s.net.Time})
		}
		return out
	}
}

func fsValues(f func(fs *cadvisorFs) uint64) func(*cadvisorSeries) []cadvisorValue {
	return func(s *cadvisorSeries) []cadvisorValue {
		out := make([]cadvisorValue, 0, len(s.fs))
		for i := range s.fs {
			out = append(out, cadvisorValue{v: float64(f(&s.fs[i])), labels: []string{s.fs[i].device}, t: s.fs[i].time})
		}
		return out
	}
}

func psiValue(get func(*cgroupSample) uint64, has func(*cgroupSample) bool) func(*cadvisorSeries) []cadvisorValue {
	return cgValue(has, func(s *cgroupSample) float64 { return float64(get(s)) / 1e6 }) // µs
}

var (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue

	cadvisorMetrics = []cadvisorMetric{
		newCadvisorMetric("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, []string{"cpu"}, true,
			func(s *cadvisorSeries) []cadvisorValue {
				if s.cg == nil || !s.cg.HasCPU {
					return nil
				}
				// Per-CPU usage is not collected (as the kubelet configures
				// cAdvisor): one "total" series.
				return []cadvisorValue{{v: seconds(s.cg.CPUUsage), labels: []string{"total"}, t: s.cg.Time}}
			}),
		newCadvisorMetric("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil, true,
			cgValue(hasCPU, func(s *cgroupSample) float64 { return seconds(s.CPUUser) })),
		newCadvisorMetric("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil, true,
			cgValue(hasCPU, func(s *cgroupSample) float64 { return seconds(s.CPUSystem) })),
		newCadvisorMetric("container_memory_cache", "Number of bytes of page cache memory.", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemCache) })),
		newCadvisorMetric("container_memory_rss", "Size of RSS in bytes.", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemRSS) })),
		newCadvisorMetric("container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemMappedFile) })),
		newCadvisorMetric("container_memory_swap", "Container swap usage in bytes.", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.SwapUsage) })),
		newCadvisorMetric("container_memory_failcnt", "Number of memory usage hits limits", counter, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemFailcnt) })),
		newCadvisorMetric("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemUsage) })),
		newCadvisorMetric("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemMaxUsage) })),
		newCadvisorMetric("container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil, true,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemWorkingSet) })),
		newCadvisorMetric("container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}, true,
			func(s *cadvisorSeries) []cadvisorValue {
				if s.cg == nil || !s.cg.HasMemory {
					return nil
				}
				t := s.cg.Time
				return []cadvisorValue{
					{v: float64(s.cg.PgFault), labels: []string{"pgfault", "container"}, t: t},
					{v: float64(s.cg.PgMajFault), labels: []string{"pgmajfault", "container"}, t: t},
					{v: float64(s.cg.HierPgFault), labels: []string{"pgfault", "hierarchy"}, t: t},
					{v: float64(s.cg.HierPgMajFault), labels: []string{"pgmajfault", "hierarchy"}, t: t},
				}
			}),
		newCadvisorMetric("container_spec_cpu_period", "CPU period of the container.", gauge, nil, false,
			cgValue(func(s *cgroupSample) bool { return s.HasCPU && s.CPUPeriod > 0 }, func(s *cgroupSample) float64 { return float64(s.CPUPeriod) })),
		newCadvisorMetric("container_spec_cpu_quota", "CPU quota of the container.", gauge, nil, false,
			cgValue(func(s *cgroupSample) bool { return s.HasCPU && s.CPUQuota > 0 }, func(s *cgroupSample) float64 { return float64(s.CPUQuota) })),
		newCadvisorMetric("container_spec_cpu_shares", "CPU share of the container.", gauge, nil, false,
			cgValue(func(s *cgroupSample) bool { return s.HasCPU && s.CPUShares > 0 }, func(s *cgroupSample) float64 { return float64(s.CPUShares) })),
		newCadvisorMetric("container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, nil, false,
			cgValue(hasMemory, func(s *cgroupSample) float64 { return float64(s.MemLimit) })),
		newCadvisorMetric("container_processes", "Number of processes running inside the container.", gauge, nil, true,
			func(s *cadvisorSeries) []cadvisorValue {
				if s.processes == nil || s.cg == nil {
					return nil
				}
				return []cadvisorValue{{v: float64(*s.processes), t: s.cg.Time}}
			}),
		newCadvisorMetric("container_threads", "Number of threads running inside the container", gauge, nil, true,
			cgValue(func(s *cgroupSample) bool { return s.HasPids }, func(s *cgroupSample) float64 { return float64(s.Pids) })),
		newCadvisorMetric("container_network_receive_bytes_total", "Cumulative count of bytes received", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.RxBytes })),
		newCadvisorMetric("container_network_receive_packets_total", "Cumulative count of packets received", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.RxPackets })),
		newCadvisorMetric("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.RxDropped })),
		newCadvisorMetric("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.RxErrors })),
		newCadvisorMetric("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.TxBytes })),
		newCadvisorMetric("container_network_transmit_packets_total", "Cumulative count of packets transmitted", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.TxPackets })),
		newCadvisorMetric("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.TxDropped })),
		newCadvisorMetric("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", counter, []string{"interface"}, true,
			netValues(func(i *ifaceStats) uint64 { return i.TxErrors })),
		newCadvisorMetric("container_fs_inodes_free", "Number of available Inodes", gauge, []string{"device"}, true,
			fsValues(func(f *cadvisorFs) uint64 { return f.inodesFree })),
		newCadvisorMetric("container_fs_inodes_total", "Number of Inodes", gauge, []string{"device"}, true,
			fsValues(func(f *cadvisorFs) uint64 { return f.inodes })),
		newCadvisorMetric("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}, true,
			fsValues(func(f *cadvisorFs) uint64 { return f.limit })),
		newCadvisorMetric("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}, true,
			fsValues(func(f *cadvisorFs) uint64 { return f.usage })),
		newCadvisorMetric("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil, true,
			psiValue(func(s *cgroupSample) uint64 { return s.CPUPSI.Full.Total }, func(s *cgroupSample) bool { return s.CPUPSI != nil })),
		newCadvisorMetric("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", counter, nil, true,
			psiValue(func(s *cgroupSample) uint64 { return s.CPUPSI.Some.Total }, func(s *cgroupSample) bool { return s.CPUPSI != nil })),
		newCadvisorMetric("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil, true,
			psiValue(func(s *cgroupSample) uint64 { return s.MemoryPSI.Full.Total }, func(s *cgroupSample) bool { return s.MemoryPSI != nil })),
		newCadvisorMetric("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", counter, nil, true,
			psiValue(func(s *cgroupSample) uint64 { return s.MemoryPSI.Some.Total }, func(s *cgroupSample) bool { return s.MemoryPSI != nil })),
		newCadvisorMetric("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil, true,
			psiValue(func(s *cgroupSample) uint64 { return s.IOPSI.Full.Total }, func(s *cgroupSample) bool { return s.IOPSI != nil })),
		newCadvisorMetric("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", counter, nil, true,
			psiValue(func(s *cgroupSample) uint64 { return s.IOPSI.Some.Total }, func(s *cgroupSample) bool { return s.IOPSI != nil })),
		newCadvisorMetric("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil, false,
			func(s *cadvisorSeries) []cadvisorValue {
				if s.start.IsZero() {
					return nil
				}
				return []cadvisorValue{{v: float64(s.start.Unix())}}
			}),
	}

	machineLabels         = []string{"boot_id", "machine_id", "system_uuid"}
	machineCPUCoresDesc   = prometheus.NewDesc("machine_cpu_cores", "Number of logical CPU cores.", machineLabels, nil)
	machineMemoryDesc     = prometheus.NewDesc("machine_memory_bytes", "Amount of memory installed on the machine.", machineLabels, nil)
	cadvisorScrapeErrDesc = prometheus.NewDesc("container_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// CadvisorCollector serves /metrics/cadvisor from the latest sample.
func (c *Collector) CadvisorCollector() prometheus.Collector {
	return cadvisorCollector{c}
}

type cadvisorCollector struct{ c *Collector }

func (cadvisorCollector) Describe(ch chan<- *prometheus.Desc) {
	for i := range cadvisorMetrics {
		ch <- cadvisorMetrics[i].desc
	}
	ch <- machineCPUCoresDesc
	ch <- machineMemoryDesc
	ch <- cadvisorScrapeErrDesc
}

func (cc cadvisorCollector) Collect(ch chan<- prometheus.Metric) {
	m := cc.c.machine
	ml := []string{m.BootID, m.MachineID, m.SystemUUID}
	ch <- prometheus.MustNewConstMetric(machineCPUCoresDesc, gauge, float64(m.NumCores), ml...)
	if m.MemoryCapacity > 0 {
		ch <- prometheus.MustNewConstMetric(machineMemoryDesc, gauge, float64(m.MemoryCapacity), ml...)
	}
	s := cc.c.snap.Load()
	scrapeErr := 0.0
	if s == nil || s.Err != nil {
		scrapeErr = 1
	}
	ch <- prometheus.MustNewConstMetric(cadvisorScrapeErrDesc, gauge, scrapeErr)
	if s == nil {
		return
	}
	series := cadvisorSeriesOf(s)
	for i := range cadvisorMetrics {
		cm := &cadvisorMetrics[i]
		for j := range series {
			for _, v := range cm.get(&series[j]) {
				metric := prometheus.MustNewConstMetric(cm.desc, cm.vt, v.v, append(series[j].labels, v.labels...)...)
				if cm.stamp {
					metric = prometheus.NewMetricWithTimestamp(v.t, metric)
				}
				ch <- metric
			}
		}
	}
}

// cadvisorSeriesOf lists the cgroups of a snapshot as cAdvisor containers.
func cadvisorSeriesOf(s *snapshot) []cadvisorSeries {
	// label order: container, id, image, name, namespace, pod
	out := make([]cadvisorSeries, 0, 1+len(s.System)+3*len(s.Pods))
	seen := map[string]bool{"/": true}
	root := cadvisorSeries{labels: []string{"", "/", "", "", "", ""}, cg: s.Node.CG, net: s.Node.Net, start: s.Node.StartTime}
	for _, f := range []*fsSnap{s.Node.RootFs, s.Node.ImageFs} {
		if f != nil && f.Info.Capacity > 0 && !hasDevice(root.fs, f.Info.Device) {
			root.fs = append(root.fs, cadvisorFs{time: f.Time, device: f.Info.Device, usage: f.Info.Usage,
				limit: f.Info.Capacity, inodes: f.Info.Inodes, inodesFree: f.Info.InodesFree})
		}
	}
	out = append(out, root)
	for i := range s.System {
		sc := &s.System[i]
		if seen[sc.Cgroup] {
			continue
		}
		seen[sc.Cgroup] = true
		out = append(out, cadvisorSeries{labels: []string{"", sc.Cgroup, "", "", "", ""}, cg: sc.CG, start: sc.StartTime})
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		if p.Cgroup != "" {
			out = append(out, cadvisorSeries{labels: []string{"", p.Cgroup, "", "", p.Namespace, p.Name}, cg: p.CG, start: p.StartTime})
		}
		if p.SandboxCgroup != "" {
			out = append(out, cadvisorSeries{labels: []string{"", p.SandboxCgroup, "", p.SandboxID, p.Namespace, p.Name},
				cg: p.SandboxCG, net: p.Net, start: p.StartTime})
		}
		for j := range p.Containers {
			c := &p.Containers[j]
			id := c.Cgroup
			if id == "" {
				id = c.ID // numbers from the runtime: no cgroup to name
			}
			cs := cadvisorSeries{labels: []string{c.Name, id, c.Image, c.ID, p.Namespace, p.Name}, cg: c.CG, start: c.StartTime, processes: c.Processes}
			if r := c.Rootfs; r != nil && r.Used != nil {
				cs.fs = []cadvisorFs{{time: r.Time, device: r.Info.Device, usage: *r.Used, limit: r.Info.Capacity,
					inodes: r.Info.Inodes, inodesFree: r.Info.InodesFree}}
			}
			out = append(out, cs)
		}
	}
	return out
}

func hasDevice(fs []cadvisorFs, device string) bool {
	for _, f := range fs {
		if f.device == device {
			return true
		}
	}
	return false
}
