// Package server holds berth's HTTP endpoints: the kubelet API (New, Run)
// and the read-only port (NewReadOnlyHandler, Serve). Handlers are built
// from small provider interfaces (PodLister, RuntimePods, Streamer,
// StatsProvider, prometheus.Gatherer) so they can be tested without the
// rest of berth.
//
// The kubelet API is upstream's, on the same paths with the same
// parameters and answers:
//
//	/healthz                             ping and syncloop checks
//	/pods                                the pods berth manages (v1.PodList)
//	/runningpods/                        the pods as the runtime sees them
//	/containerLogs/{ns}/{pod}/{container} a container's log, across rotations
//	/exec, /attach, /portForward         proxied to the runtime's CRI streaming server
//	/run/{ns}/{pod}/{container}          a command's output (CRI ExecSync, killed after runtimeRequestTimeout)
//	/stats/summary                       the Summary API
//	/metrics, /metrics/{cadvisor,resource,probes}
//	/configz                             the configuration in force (the fields berth acts on)
//	/logs/                               the node's /var/log
//	/debug/pprof/                        Go profiles, if enabled
//
// Every request passes Auth first: an x509 client certificate, a bearer
// token checked with a TokenReview, or (if enabled) anonymous; then a
// SubjectAccessReview for the node subresource the path maps to (see
// RequestAttributes), or AlwaysAllow. 401 and 403 as upstream.
//
// Streaming requests are not served by berth itself: berth asks the runtime
// (CRI Exec, Attach, PortForward) for a URL on its streaming server and
// proxies the client's upgraded connection there, translating WebSocket
// clients (remote command v5, port-forward tunneling) to the SPDY that
// runtimes speak. This is what upstream's kubelet does since the redirect
// mode was removed.
package server
