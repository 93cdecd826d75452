package stats

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Samples are stamped with the fake clock: t0 + 10 s = 1767323055000 ms.
const resourceWant = `
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 15 1767323055000
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 2e+08 1767323055000
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="web"} 1.767321245e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 50 1767323055000
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2e+09 1767323055000
# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems
# TYPE node_swap_usage_bytes gauge
node_swap_usage_bytes 1.024e+08 1767323055000
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web"} 16 1767323055000
# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes
# TYPE pod_memory_working_set_bytes gauge
pod_memory_working_set_bytes{namespace="default",pod="web"} 2e+08 1767323055000
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
`

func TestResourceCollector(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	rc := c.ResourceCollector()
	if err := testutil.CollectAndCompare(rc, strings.NewReader(`
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 1
`)); err != nil {
		t.Errorf("before the first round: %v", err)
	}
	twoRounds(t, e, c, false)
	if err := testutil.CollectAndCompare(rc, strings.NewReader(resourceWant)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(rc); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

const cadvisorWant = `
# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",name="",namespace="",pod=""} 50 1767323055000
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods",image="",name="",namespace="",pod=""} 20 1767323055000
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555",image="",name="",namespace="default",pod="web"} 16 1767323055000
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/sb0123456789",image="",name="sb0123456789",namespace="default",pod="web"} 1 1767323055000
container_cpu_usage_seconds_total{container="app",cpu="total",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/ctr0123456789",image="busybox:1.36",name="ctr0123456789",namespace="default",pod="web"} 15 1767323055000
# HELP container_memory_rss Size of RSS in bytes.
# TYPE container_memory_rss gauge
container_memory_rss{container="",id="/",image="",name="",namespace="",pod=""} 1e+09 1767323055000
container_memory_rss{container="",id="/kubepods",image="",name="",namespace="",pod=""} 0 1767323055000
container_memory_rss{container="",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555",image="",name="",namespace="default",pod="web"} 1.5e+08 1767323055000
container_memory_rss{container="",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/sb0123456789",image="",name="sb0123456789",namespace="default",pod="web"} 0 1767323055000
container_memory_rss{container="app",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/ctr0123456789",image="busybox:1.36",name="ctr0123456789",namespace="default",pod="web"} 1.5e+08 1767323055000
# HELP container_network_receive_bytes_total Cumulative count of bytes received
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{container="",id="/",image="",interface="eth0",name="",namespace="",pod=""} 1000 1767323055000
container_network_receive_bytes_total{container="",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/sb0123456789",image="",interface="eth0",name="sb0123456789",namespace="default",pod="web"} 300 1767323055000
# HELP container_processes Number of processes running inside the container.
# TYPE container_processes gauge
container_processes{container="app",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/ctr0123456789",image="busybox:1.36",name="ctr0123456789",namespace="default",pod="web"} 2 1767323055000
# HELP container_spec_memory_limit_bytes Memory limit for the container.
# TYPE container_spec_memory_limit_bytes gauge
container_spec_memory_limit_bytes{container="",id="/",image="",name="",namespace="",pod=""} 8.192e+09
container_spec_memory_limit_bytes{container="",id="/kubepods",image="",name="",namespace="",pod=""} 0
container_spec_memory_limit_bytes{container="",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555",image="",name="",namespace="default",pod="web"} 1.073741824e+09
container_spec_memory_limit_bytes{container="",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/sb0123456789",image="",name="sb0123456789",namespace="default",pod="web"} 0
container_spec_memory_limit_bytes{container="app",id="/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/ctr0123456789",image="busybox:1.36",name="ctr0123456789",namespace="default",pod="web"} 5.36870912e+08
`

func TestCadvisorCollector(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	twoRounds(t, e, c, false)
	cc := c.CadvisorCollector()
	if err := testutil.CollectAndCompare(cc, strings.NewReader(cadvisorWant),
		"container_cpu_usage_seconds_total", "container_memory_rss", "container_network_receive_bytes_total",
		"container_processes", "container_spec_memory_limit_bytes"); err != nil {
		t.Error(err)
	}
	// Every family registers and gathers cleanly (consistent labels, no
	// duplicate series) and passes the linter.
	// The two collectors share family names with different help (as
	// upstream's do): each needs its own registry and endpoint.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.ResourceCollector())
	if err := reg.Register(cc); err == nil {
		t.Error("cadvisor and resource collectors registered together")
	}
	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(cc)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"container_memory_working_set_bytes", "container_memory_usage_bytes", "container_memory_cache",
		"container_network_transmit_bytes_total", "container_fs_usage_bytes", "container_fs_limit_bytes",
		"container_threads", "container_start_time_seconds", "machine_cpu_cores", "machine_memory_bytes", "container_scrape_error",
	} {
		if !names[want] {
			t.Errorf("family %s missing", want)
		}
	}
	// cAdvisor's own names break two rules; berth keeps the names
	// dashboards use.
	problems, err := testutil.CollectAndLint(cc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if p.Metric != "container_fs_inodes_total" && p.Metric != "container_memory_failcnt" {
			t.Errorf("lint: %v", p)
		}
	}
}

func TestCadvisorScrapeError(t *testing.T) {
	e := newTestEnv(t)
	c := collectorFor(t, e, false)
	e.rt.listErr = context.DeadlineExceeded
	c.housekeep(testCtx(t))
	if err := testutil.CollectAndCompare(c.CadvisorCollector(), strings.NewReader(`
# HELP container_scrape_error 1 if there was an error while getting container metrics, 0 otherwise
# TYPE container_scrape_error gauge
container_scrape_error 1
`), "container_scrape_error"); err != nil {
		t.Error(err)
	}
}

// testutilCollect gathers both collectors, as two scrapes would.
func testutilCollect(c *Collector) int {
	return testutil.CollectAndCount(c.CadvisorCollector()) + testutil.CollectAndCount(c.ResourceCollector())
}
