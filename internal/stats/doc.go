// Package stats is berth's cAdvisor: it measures the node, its pods and
// their containers and serves the numbers as the Summary API
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1), /metrics/cadvisor and
// /metrics/resource.
//
// One goroutine (Collector.Run) takes a sample of everything every
// housekeeping interval and publishes it as an immutable snapshot; requests
// build their answers from the latest snapshot and never touch the file
// system or the runtime, so a scrape costs the same however often it comes.
//
//	every interval:
//	  node      root cgroup (v1) or /proc (v2 root), /proc/net/dev, statfs(RootDir),
//	            CRI ImageFsInfo + statfs of its mount point, /proc/loadavg
//	  system    kubelet / runtime / misc / pods cgroups
//	  pods      runtime.ListPods, CRI ListContainerStats, then per pod:
//	            pod cgroup (found once per QoS class, then remembered),
//	            sandbox and container cgroups (children named by ID, found
//	            once by listing the pod cgroup, then remembered),
//	            sandbox's pause PID -> /proc/<pid>/net/dev,
//	            writable layer from CRI, log files (stat, no walk),
//	            local volumes (walked at most once per VolumeStatsAggPeriod,
//	            with an entry budget)
//	  CPU rate  usageNanoCores from this sample and the previous one
//
// Caches (cgroup paths, pause PIDs, previous CPU readings, volume walks)
// are rebuilt from each round's pods, so they never outgrow the node. A
// container whose cgroup is not found gets the runtime's CPU and memory
// numbers instead.
//
// A round opens a few thousand small files on a node with 100 pods, so
// their cost is what housekeeping costs: fileReader (readfile.go) reads
// them with plain system calls into one reused buffer, opening each
// relative to its cgroup's directory and a pod's children relative to the
// pod's, and the parsers allocate nothing per value.
//
// cgroup v1 (including hybrid hosts) and v2 are detected from the file
// system at CgroupRoot. Working set is usage minus inactive file pages, as
// cAdvisor computes it.
package stats
