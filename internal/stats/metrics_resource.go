package stats

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// The /metrics/resource families, named and described as upstream's
// pkg/kubelet/metrics/collectors/resource_metrics.go (help text carries the
// stability marker that k8s.io/component-base/metrics adds). Upstream's
// scrape_error is deprecated since 1.29 and hidden since 1.30, so only
// resource_scrape_error is served.
var (
	containerLabels = []string{"container", "pod", "namespace"}
	podLabels       = []string{"pod", "namespace"}

	nodeCPUUsageDesc = prometheus.NewDesc("node_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	nodeMemoryUsageDesc = prometheus.NewDesc("node_memory_working_set_bytes",
		"[STABLE] Current working set of the node in bytes", nil, nil)
	nodeSwapUsageDesc = prometheus.NewDesc("node_swap_usage_bytes",
		"[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems", nil, nil)
	containerCPUUsageDesc = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the container in core-seconds", containerLabels, nil)
	containerMemoryUsageDesc = prometheus.NewDesc("container_memory_working_set_bytes",
		"[STABLE] Current working set of the container in bytes", containerLabels, nil)
	containerSwapUsageDesc = prometheus.NewDesc("container_swap_usage_bytes",
		"[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems", containerLabels, nil)
	containerSwapLimitDesc = prometheus.NewDesc("container_swap_limit_bytes",
		"[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems", containerLabels, nil)
	podCPUUsageDesc = prometheus.NewDesc("pod_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the pod in core-seconds", podLabels, nil)
	podMemoryUsageDesc = prometheus.NewDesc("pod_memory_working_set_bytes",
		"[STABLE] Current working set of the pod in bytes", podLabels, nil)
	podSwapUsageDesc = prometheus.NewDesc("pod_swap_usage_bytes",
		"[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems", podLabels, nil)
	resourceScrapeErrorDesc = prometheus.NewDesc("resource_scrape_error",
		"[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
	containerStartTimeDesc = prometheus.NewDesc("container_start_time_seconds",
		"[STABLE] Start time of the container since unix epoch in seconds", containerLabels, nil)
)

// ResourceCollector serves upstream's /metrics/resource (what
// metrics-server reads) from the latest sample.
func (c *Collector) ResourceCollector() prometheus.Collector {
	return resourceCollector{c}
}

type resourceCollector struct{ c *Collector }

func (resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		nodeCPUUsageDesc, nodeMemoryUsageDesc, nodeSwapUsageDesc, containerStartTimeDesc,
		containerCPUUsageDesc, containerMemoryUsageDesc, containerSwapUsageDesc, containerSwapLimitDesc,
		podCPUUsageDesc, podMemoryUsageDesc, podSwapUsageDesc, resourceScrapeErrorDesc,
	} {
		ch <- d
	}
}

func (r resourceCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := r.c.Summary(context.Background(), true)
	scrapeErr := 0.0
	if err != nil {
		scrapeErr = 1
	}
	ch <- prometheus.MustNewConstMetric(resourceScrapeErrorDesc, prometheus.GaugeValue, scrapeErr)
	if err != nil {
		return
	}
	n := &s.Node
	if n.CPU != nil && n.CPU.UsageCoreNanoSeconds != nil {
		ch <- at(n.CPU.Time.Time, nodeCPUUsageDesc, prometheus.CounterValue, seconds(*n.CPU.UsageCoreNanoSeconds))
	}
	if n.Memory != nil && n.Memory.WorkingSetBytes != nil {
		ch <- at(n.Memory.Time.Time, nodeMemoryUsageDesc, prometheus.GaugeValue, float64(*n.Memory.WorkingSetBytes))
	}
	if n.Swap != nil && n.Swap.SwapUsageBytes != nil {
		ch <- at(n.Swap.Time.Time, nodeSwapUsageDesc, prometheus.GaugeValue, float64(*n.Swap.SwapUsageBytes))
	}
	for i := range s.Pods {
		p := &s.Pods[i]
		for j := range p.Containers {
			collectContainerResources(ch, p, &p.Containers[j])
		}
		if p.CPU != nil && p.CPU.UsageCoreNanoSeconds != nil {
			ch <- at(p.CPU.Time.Time, podCPUUsageDesc, prometheus.CounterValue, seconds(*p.CPU.UsageCoreNanoSeconds), p.PodRef.Name, p.PodRef.Namespace)
		}
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			ch <- at(p.Memory.Time.Time, podMemoryUsageDesc, prometheus.GaugeValue, float64(*p.Memory.WorkingSetBytes), p.PodRef.Name, p.PodRef.Namespace)
		}
		if p.Swap != nil && p.Swap.SwapUsageBytes != nil {
			ch <- at(p.Swap.Time.Time, podSwapUsageDesc, prometheus.GaugeValue, float64(*p.Swap.SwapUsageBytes), p.PodRef.Name, p.PodRef.Namespace)
		}
	}
}

func collectContainerResources(ch chan<- prometheus.Metric, p *statsapi.PodStats, c *statsapi.ContainerStats) {
	labels := []string{c.Name, p.PodRef.Name, p.PodRef.Namespace}
	if c.StartTime.Unix() > 0 {
		ch <- prometheus.MustNewConstMetric(containerStartTimeDesc, prometheus.GaugeValue,
			float64(c.StartTime.UnixNano())/float64(time.Second), labels...)
	}
	if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
		ch <- at(c.CPU.Time.Time, containerCPUUsageDesc, prometheus.CounterValue, seconds(*c.CPU.UsageCoreNanoSeconds), labels...)
	}
	if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
		ch <- at(c.Memory.Time.Time, containerMemoryUsageDesc, prometheus.GaugeValue, float64(*c.Memory.WorkingSetBytes), labels...)
	}
	if c.Swap != nil {
		swapUsage := 0.0
		if c.Swap.SwapUsageBytes != nil {
			swapUsage = float64(*c.Swap.SwapUsageBytes)
			ch <- at(c.Swap.Time.Time, containerSwapUsageDesc, prometheus.GaugeValue, swapUsage, labels...)
		}
		if c.Swap.SwapAvailableBytes != nil {
			ch <- at(c.Swap.Time.Time, containerSwapLimitDesc, prometheus.GaugeValue, float64(*c.Swap.SwapAvailableBytes)+swapUsage, labels...)
		}
	}
}

// at is a sample stamped with the time it was read, as upstream serves them.
func at(t time.Time, d *prometheus.Desc, vt prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	return prometheus.NewMetricWithTimestamp(t, prometheus.MustNewConstMetric(d, vt, v, labels...))
}

func seconds(ns uint64) float64 {
	return float64(ns) / float64(time.Second)
}
