package config

import (
	"slices"
	"strings"
)

// supportedFields lists, by JSON path, the KubeletConfiguration fields berth
// acts on. A path covers everything beneath it ("authentication" would cover
// "authentication.webhook.enabled"). Add a field here when the feature that
// honours it lands; every other field a user sets is reported once at
// start-up as not acted on.
func supportedFields() []string {
	return []string{
		"apiVersion",
		"kind",

		"staticPodPath",
		"syncFrequency",
		"fileCheckFrequency",
		"staticPodURL",
		"staticPodURLHeader",
		"httpCheckFrequency",

		"containerRuntimeEndpoint",
		"imageServiceEndpoint",
		"runtimeRequestTimeout",
		"cgroupDriver",
		"podLogsDir",

		"serializeImagePulls",
		"maxParallelImagePulls",
		"imagePullCredentialsVerificationPolicy",
		"preloadedImagesVerificationAllowlist",

		"clusterDNS",
		"clusterDomain",
		"resolvConf",
		"maxPods",
		"allowedUnsafeSysctls",
		"seccompDefault",
		"protectKernelDefaults",
		"userNamespaces", // idsPerPod: the ID range of pods with hostUsers: false

		"readOnlyPort",
		"address",

		// The kubelet API and healthz servers.
		"healthzBindAddress",
		"healthzPort",
		"tlsCertFile",
		"tlsPrivateKeyFile",
		"tlsMinVersion",
		"tlsCipherSuites",
		"authentication",
		"authorization",
		"enableDebuggingHandlers",
		"enableSystemLogHandler",
		"enableProfilingHandler",

		// Certificates from the certificates API (internal/certificate).
		"rotateCertificates",
		"serverTLSBootstrap",

		// Container log rotation and stats.
		"containerLogMaxSize",
		"containerLogMaxFiles",
		"containerLogMaxWorkers",
		"containerLogMonitorInterval",
		"volumeStatsAggPeriod",
		"kubeletCgroups",
		"systemCgroups",

		// The node's cgroups (internal/cm).
		"cgroupsPerQOS",
		"cgroupRoot",
		"cpuCFSQuota",
		"cpuCFSQuotaPeriod",
		"podPidsLimit",
		"enforceNodeAllocatable",
		"kubeReservedCgroup",
		"systemReservedCgroup",

		// The API server connection and the Node object.
		"kubeAPIQPS",
		"kubeAPIBurst",
		"eventRecordQPS",
		"eventBurst",
		"port", // reported in the Node's daemonEndpoints
		"registerWithTaints",
		"kubeReserved",
		"systemReserved",
		// Eviction (internal/eviction); hard thresholds are also held back
		// from allocatable as upstream does.
		"evictionHard",
		"mergeDefaultEvictionSettings",
		"evictionSoft",
		"evictionSoftGracePeriod",
		"evictionMinimumReclaim",
		"evictionPressureTransitionPeriod",
		"evictionMaxPodGracePeriod",
		"localStorageCapacityIsolation",
		// Memory thresholds are watched through cgroup v1 notifications
		// whatever its value (berth's choice: they cost nothing idle).
		"kernelMemcgNotification",
		// Image garbage collection (internal/image.GC).
		"imageGCHighThresholdPercent",
		"imageGCLowThresholdPercent",
		"imageMinimumGCAge",
		"imageMaximumGCAge",
		"nodeStatusUpdateFrequency",
		"nodeStatusReportFrequency",
		"nodeLeaseDurationSeconds",

		"logging", // applied by cmd/berth as upstream (logsapi)

		"failSwapOn", // checked at start-up (swap.go)
		// Graceful node shutdown (internal/nodeshutdown).
		"shutdownGracePeriod",
		"shutdownGracePeriodCriticalPods",
		"shutdownGracePeriodByPodPriority",
		"providerID", // the Node's spec.providerID
	}
}

// isSupported reports whether berth acts on the field at path.
func isSupported(path string) bool {
	for _, s := range supportedFields() {
		if path == s || strings.HasPrefix(path, s+".") {
			return true
		}
	}
	return false
}

// unsupported returns, sorted and without duplicates, the paths in set that
// berth does not act on.
func unsupported(set []string) []string {
	var out []string
	for _, p := range set {
		if !isSupported(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// supportedFlags lists the flags berth acts on that are not configuration
// fields (those are covered by supportedFields). Every other one given is
// reported once at start-up as not acted on.
func supportedFlags() []string {
	return []string{
		"config",
		"config-dir",
		"kubeconfig",
		"bootstrap-kubeconfig", // TLS bootstrap (internal/certificate)
		"hostname-override",
		"node-ip",
		"cert-dir",
		"cloud-provider",
		"root-dir",
		"seccomp-default", // sets seccompDefault
		"node-labels",
		"housekeeping-interval",
		"minimum-container-ttl-duration",        // container GC (internal/runtime)
		"maximum-dead-containers-per-container", // container GC (internal/runtime)
		"version",
		"help",
		"static-pod-security", // berth's own (internal/admission)
		"pod-security-floor",
		"node-autonomy", // berth's own (internal/autonomy)
		"node-autonomy-api-wait",
		"image-credential-provider-config",  // internal/image/credprovider
		"image-credential-provider-bin-dir", // internal/image/credprovider
	}
}

func isSupportedFlag(name string) bool { return slices.Contains(supportedFlags(), name) }
