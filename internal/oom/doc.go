// Package oom reports OOM kills. The system OOM watcher reads the kernel
// log (/dev/kmsg) as upstream's OOM watcher (pkg/kubelet/oom with its
// forked cAdvisor parser) does and records a SystemOOM event on the Node
// for every kill by the global OOM killer; kills within a cgroup's limit
// are the containers' and reach their status as OOMKilled from the
// runtime.
package oom
