package config

import (
	"strings"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// configDeprecation is upstream's message for every flag that sets a
// KubeletConfiguration field, printed when one is used.
const configDeprecation = "This parameter should be set via the config file specified by the Kubelet's --config flag. " +
	"See https://kubernetes.io/docs/tasks/administer-cluster/kubelet-config-file/ for more information."

// configBinder registers flags that write straight into a
// KubeletConfiguration, as upstream's AddKubeletConfigFlags does, and
// records each flag's field.
type configBinder struct {
	fs     *pflag.FlagSet
	fields map[string]string // flag name → JSON path of its field
}

func (b configBinder) field(name, path string) { b.fields[name] = path }

func (b configBinder) boolean(p **bool, name, path, usage string) {
	if *p == nil {
		*p = new(bool)
	}
	b.fs.BoolVar(*p, name, **p, usage)
	b.field(name, path)
}

func (b configBinder) int32p(p **int32, name, path, usage string) {
	if *p == nil {
		*p = new(int32)
	}
	b.fs.Int32Var(*p, name, **p, usage)
	b.field(name, path)
}

func (b configBinder) duration(d *metav1.Duration, name, path, usage string) {
	b.fs.DurationVar(&d.Duration, name, d.Duration, usage)
	b.field(name, path)
}

func (b configBinder) str(p *string, name, path, usage string) {
	b.fs.StringVar(p, name, *p, usage)
	b.field(name, path)
}

func (b configBinder) value(v pflag.Value, name, path, usage string) {
	b.fs.Var(v, name, usage)
	b.field(name, path)
}

// addConfigFlags registers the flags that set KubeletConfiguration fields
// onto c, which must be defaulted. The help shows c's values as defaults.
func addConfigFlags(fs *pflag.FlagSet, c *kubeletconfig.KubeletConfiguration) map[string]string {
	b := configBinder{fs: pflag.NewFlagSet("", pflag.ContinueOnError), fields: map[string]string{}}
	if c.CPUCFSQuotaPeriod == nil {
		c.CPUCFSQuotaPeriod = &metav1.Duration{}
	}
	if c.ResolverConfig == nil {
		c.ResolverConfig = new(string)
	}
	if c.PodPidsLimit == nil {
		c.PodPidsLimit = new(int64)
	}

	// Pod sources and servers.
	b.boolean(&c.EnableServer, "enable-server", "enableServer", "Serve the kubelet API.")
	b.boolean(&c.FailSwapOn, "fail-swap-on", "failSwapOn", "Refuse to start when swap is on.")
	b.str(&c.StaticPodPath, "pod-manifest-path", "staticPodPath", "Directory of static pod manifests, or a single manifest file; files starting with a dot are ignored.")
	b.duration(&c.SyncFrequency, "sync-frequency", "syncFrequency", "Maximum time between two syncs of every pod.")
	b.duration(&c.FileCheckFrequency, "file-check-frequency", "fileCheckFrequency", "Time between rescans of the static pod path.")
	b.duration(&c.HTTPCheckFrequency, "http-check-frequency", "httpCheckFrequency", "Time between two reads of --manifest-url.")
	b.str(&c.StaticPodURL, "manifest-url", "staticPodURL", "URL to read static pod manifests from.")
	b.value(cliflag.NewColonSeparatedMultimapStringString(&c.StaticPodURLHeader), "manifest-url-header", "staticPodURLHeader", "HTTP headers for --manifest-url, 'name:value' separated by ','; repeatable.")
	b.value(ipValue{&c.Address}, "address", "address", "IP address to serve the kubelet API and the read-only port on. Default 127.0.0.1 when standalone, 0.0.0.0 with --kubeconfig.")
	b.fs.Int32Var(&c.Port, "port", c.Port, "Port of the kubelet API.")
	b.field("port", "port")
	b.fs.Int32Var(&c.ReadOnlyPort, "read-only-port", c.ReadOnlyPort, "Port of the unauthenticated read-only endpoint, 0 disables it. Default 10255 when standalone, 0 with --kubeconfig.")
	b.field("read-only-port", "readOnlyPort")
	b.boolean(&c.FailCgroupV1, "fail-cgroupv1", "failCgroupV1", "Refuse to start on a host with cgroup v1.")

	// The runtime.
	b.str(&c.ContainerRuntimeEndpoint, "container-runtime-endpoint", "containerRuntimeEndpoint", "CRI runtime service endpoint, a unix:// socket.")
	b.str(&c.ImageServiceEndpoint, "image-service-endpoint", "imageServiceEndpoint", "CRI image service endpoint; defaults to --container-runtime-endpoint.")

	// Authentication and authorization of the kubelet API.
	b.boolean(&c.Authentication.Anonymous.Enabled, "anonymous-auth", "authentication.anonymous.enabled", "Let requests no authenticator rejects through as system:anonymous.")
	b.boolean(&c.Authentication.Webhook.Enabled, "authentication-token-webhook", "authentication.webhook.enabled", "Authenticate bearer tokens with the TokenReview API; needs --kubeconfig, off by default when standalone.")
	b.duration(&c.Authentication.Webhook.CacheTTL, "authentication-token-webhook-cache-ttl", "authentication.webhook.cacheTTL", "How long TokenReview results are cached.")
	b.str(&c.Authentication.X509.ClientCAFile, "client-ca-file", "authentication.x509.clientCAFile", "CA bundle: a client certificate it signed authenticates as the certificate's CommonName.")
	b.str((*string)(&c.Authorization.Mode), "authorization-mode", "authorization.mode", "AlwaysAllow, or Webhook to ask the SubjectAccessReview API; Webhook needs --kubeconfig, AlwaysAllow is the default when standalone.")
	b.duration(&c.Authorization.Webhook.CacheAuthorizedTTL, "authorization-webhook-cache-authorized-ttl", "authorization.webhook.cacheAuthorizedTTL", "How long allowed SubjectAccessReview results are cached.")
	b.duration(&c.Authorization.Webhook.CacheUnauthorizedTTL, "authorization-webhook-cache-unauthorized-ttl", "authorization.webhook.cacheUnauthorizedTTL", "How long denied SubjectAccessReview results are cached.")

	// TLS and certificates.
	b.str(&c.TLSCertFile, "tls-cert-file", "tlsCertFile", "x509 certificate of the kubelet API, intermediates appended. Without it and --tls-private-key-file, a self-signed pair is kept in --cert-dir.")
	b.str(&c.TLSPrivateKeyFile, "tls-private-key-file", "tlsPrivateKeyFile", "x509 private key matching --tls-cert-file.")
	b.fs.BoolVar(&c.ServerTLSBootstrap, "rotate-server-certificates", c.ServerTLSBootstrap, "Request the serving certificate from the API server and renew it before it expires.")
	b.field("rotate-server-certificates", "serverTLSBootstrap")
	b.fs.StringSliceVar(&c.TLSCipherSuites, "tls-cipher-suites", c.TLSCipherSuites, "Comma-separated cipher suites for TLS 1.2; empty means Go's defaults. Preferred: "+strings.Join(cliflag.PreferredTLSCipherNames(), ", ")+".")
	b.field("tls-cipher-suites", "tlsCipherSuites")
	b.str(&c.TLSMinVersion, "tls-min-version", "tlsMinVersion", "Minimum TLS version: "+strings.Join(cliflag.TLSPossibleVersions(), ", ")+"; empty means Go's default.")
	b.fs.BoolVar(&c.RotateCertificates, "rotate-certificates", c.RotateCertificates, "Renew the client certificate from the API server before it expires.")
	b.field("rotate-certificates", "rotateCertificates")

	// API server clients and events.
	b.int32p(&c.RegistryPullQPS, "registry-qps", "registryPullQPS", "Image pulls per second, 0 for no limit.")
	b.fs.Int32Var(&c.RegistryBurst, "registry-burst", c.RegistryBurst, "Burst of image pulls when --registry-qps is set.")
	b.field("registry-burst", "registryBurst")
	b.int32p(&c.EventRecordQPS, "event-qps", "eventRecordQPS", "Events posted per second, >= 0; 0 means no limit.")
	b.fs.Int32Var(&c.EventBurst, "event-burst", c.EventBurst, "Burst of events posted, >= 0.")
	b.field("event-burst", "eventBurst")

	// Debugging and health.
	b.boolean(&c.EnableDebuggingHandlers, "enable-debugging-handlers", "enableDebuggingHandlers", "Serve logs, exec, attach, port-forward and run on the kubelet API.")
	b.fs.BoolVar(&c.EnableContentionProfiling, "contention-profiling", c.EnableContentionProfiling, "Enable block profiling when profiling is enabled.")
	b.field("contention-profiling", "enableContentionProfiling")
	b.int32p(&c.HealthzPort, "healthz-port", "healthzPort", "Port of the healthz endpoint, 0 disables it.")
	b.value(ipValue{&c.HealthzBindAddress}, "healthz-bind-address", "healthzBindAddress", "IP address of the healthz endpoint.")
	b.int32p(&c.OOMScoreAdj, "oom-score-adj", "oomScoreAdj", "oom_score_adj of the kubelet process, in [-1000, 1000].")
	b.str(&c.ClusterDomain, "cluster-domain", "clusterDomain", "Cluster domain added to pods' DNS search list.")

	b.str(&c.VolumePluginDir, "volume-plugin-dir", "volumePluginDir", "Directory of third-party (flex) volume plugins.")
	b.fs.StringSliceVar(&c.ClusterDNS, "cluster-dns", c.ClusterDNS, "Comma-separated DNS server IPs for pods with dnsPolicy ClusterFirst.")
	b.field("cluster-dns", "clusterDNS")
	b.duration(&c.StreamingConnectionIdleTimeout, "streaming-connection-idle-timeout", "streamingConnectionIdleTimeout", "Idle time after which an exec, attach or port-forward stream is closed; 0 for none.")
	b.duration(&c.NodeStatusUpdateFrequency, "node-status-update-frequency", "nodeStatusUpdateFrequency", "How often the node status is computed and, when changed, posted.")
	b.duration(&c.ImageMinimumGCAge, "minimum-image-ttl-duration", "imageMinimumGCAge", "Minimum age of an unused image before it may be garbage collected.")
	b.int32p(&c.ImageGCHighThresholdPercent, "image-gc-high-threshold", "imageGCHighThresholdPercent", "Disk usage percentage above which images are always garbage collected; 100 disables image GC.")
	b.int32p(&c.ImageGCLowThresholdPercent, "image-gc-low-threshold", "imageGCLowThresholdPercent", "Disk usage percentage image garbage collection frees down to.")
	b.duration(&c.VolumeStatsAggPeriod, "volume-stats-agg-period", "volumeStatsAggPeriod", "How often volume disk usage is computed; negative disables it.")
	b.value(cliflag.NewMapStringBool(&c.FeatureGates), "feature-gates", "featureGates", "Feature gates, key=value pairs separated by ','; names are upstream's v1.37 gates.")
	b.str(&c.KubeletCgroups, "kubelet-cgroups", "kubeletCgroups", "Absolute name of the kubelet's cgroup.")
	b.str(&c.SystemCgroups, "system-cgroups", "systemCgroups", "Absolute name of the cgroup for the system's processes; needs --cgroup-root.")

	b.str(&c.ProviderID, "provider-id", "providerID", "Identifier of the node in the machine database of its cloud provider, set as the Node's spec.providerID.")

	// Cgroups and resource managers.
	b.boolean(&c.CgroupsPerQOS, "cgroups-per-qos", "cgroupsPerQOS", "Create the QoS class and pod cgroup hierarchy.")
	b.str(&c.CgroupDriver, "cgroup-driver", "cgroupDriver", "Cgroup driver: cgroupfs or systemd.")
	b.str(&c.CgroupRoot, "cgroup-root", "cgroupRoot", "Root cgroup of the pods' cgroups; empty for the runtime's default.")
	b.str(&c.CPUManagerPolicy, "cpu-manager-policy", "cpuManagerPolicy", "CPU manager policy: none or static.")
	b.value(cliflag.NewMapStringStringNoSplit(&c.CPUManagerPolicyOptions), "cpu-manager-policy-options", "cpuManagerPolicyOptions", "CPU manager policy options, key=value.")
	b.duration(&c.CPUManagerReconcilePeriod, "cpu-manager-reconcile-period", "cpuManagerReconcilePeriod", "CPU manager reconciliation period.")
	b.value(cliflag.NewMapStringString(&c.QOSReserved), "qos-reserved", "qosReserved", "Percentage of pod memory requests reserved at the QoS level, e.g. memory=50%.")
	b.str(&c.TopologyManagerPolicy, "topology-manager-policy", "topologyManagerPolicy", "Topology manager policy: none, best-effort, restricted or single-numa-node.")
	b.duration(&c.RuntimeRequestTimeout, "runtime-request-timeout", "runtimeRequestTimeout", "Timeout of CRI requests other than long-running ones such as pulls.")
	b.str(&c.HairpinMode, "hairpin-mode", "hairpinMode", "Hairpin NAT set-up: promiscuous-bridge, hairpin-veth or none.")
	b.fs.Int32Var(&c.MaxPods, "max-pods", c.MaxPods, "Number of pods that can run on this node.")
	b.field("max-pods", "maxPods")

	b.str(&c.PodCIDR, "pod-cidr", "podCIDR", "CIDR of pod IPs in standalone mode.")
	b.fs.Int64Var(c.PodPidsLimit, "pod-max-pids", *c.PodPidsLimit, "Maximum number of processes per pod; -1 for the node's pid capacity.")
	b.field("pod-max-pids", "podPidsLimit")
	b.str(c.ResolverConfig, "resolv-conf", "resolvConf", "Host resolver file pods inherit DNS settings from; empty disables it.")
	b.fs.BoolVar(&c.RunOnce, "runonce", c.RunOnce, "Start the static pods, then exit.")
	b.field("runonce", "runOnce")
	b.boolean(&c.CPUCFSQuota, "cpu-cfs-quota", "cpuCFSQuota", "Enforce CPU limits with CFS quota.")
	b.duration(c.CPUCFSQuotaPeriod, "cpu-cfs-quota-period", "cpuCFSQuotaPeriod", "CFS quota period (cpu.cfs_period_us).")
	b.boolean(&c.EnableControllerAttachDetach, "enable-controller-attach-detach", "enableControllerAttachDetach", "Let the attach/detach controller attach and detach this node's volumes.")
	b.boolean(&c.MakeIPTablesUtilChains, "make-iptables-util-chains", "makeIPTablesUtilChains", "Keep the iptables utility chains on the host.")
	b.str(&c.ContainerLogMaxSize, "container-log-max-size", "containerLogMaxSize", "Size of a container log file at which it is rotated, e.g. 10Mi.")
	b.int32p(&c.ContainerLogMaxFiles, "container-log-max-files", "containerLogMaxFiles", "Number of log files kept per container, at least 2.")
	b.fs.StringSliceVar(&c.AllowedUnsafeSysctls, "allowed-unsafe-sysctls", c.AllowedUnsafeSysctls, "Comma-separated unsafe sysctls or sysctl patterns (ending in *) pods may set, beside the safe ones.")
	b.field("allowed-unsafe-sysctls", "allowedUnsafeSysctls")

	b.int32p(&c.NodeStatusMaxImages, "node-status-max-images", "nodeStatusMaxImages", "Number of images reported in the Node's status; -1 for all.")
	b.fs.BoolVar(&c.KernelMemcgNotification, "kernel-memcg-notification", c.KernelMemcgNotification, "Learn of crossed memory eviction thresholds from kernel memcg notifications instead of polling.")
	b.field("kernel-memcg-notification", "kernelMemcgNotification")
	b.boolean(&c.LocalStorageCapacityIsolation, "local-storage-capacity-isolation", "localStorageCapacityIsolation", "Account and limit pods' local ephemeral storage.")

	b.fs.Int64Var(&c.MaxOpenFiles, "max-open-files", c.MaxOpenFiles, "Number of files the kubelet process may open.")
	b.field("max-open-files", "maxOpenFiles")
	b.str(&c.ContentType, "kube-api-content-type", "contentType", "Content type of requests to the API server.")
	b.int32p(&c.KubeAPIQPS, "kube-api-qps", "kubeAPIQPS", "Queries per second to the API server, >= 0.")
	b.fs.Int32Var(&c.KubeAPIBurst, "kube-api-burst", c.KubeAPIBurst, "Burst of queries to the API server, >= 0.")
	b.field("kube-api-burst", "kubeAPIBurst")
	b.boolean(&c.SerializeImagePulls, "serialize-image-pulls", "serializeImagePulls", "Pull one image at a time.")

	// Eviction.
	b.value(cliflag.NewLangleSeparatedMapStringString(&c.EvictionHard), "eviction-hard", "evictionHard", "Hard eviction thresholds, e.g. memory.available<1Gi,nodefs.available<10%.")
	b.value(cliflag.NewLangleSeparatedMapStringString(&c.EvictionSoft), "eviction-soft", "evictionSoft", "Soft eviction thresholds, e.g. memory.available<1.5Gi.")
	b.value(cliflag.NewMapStringString(&c.EvictionSoftGracePeriod), "eviction-soft-grace-period", "evictionSoftGracePeriod", "How long each soft threshold must hold before pods are evicted, e.g. memory.available=1m30s.")
	b.duration(&c.EvictionPressureTransitionPeriod, "eviction-pressure-transition-period", "evictionPressureTransitionPeriod", "How long a pressure condition stays after the pressure is gone.")
	b.fs.Int32Var(&c.EvictionMaxPodGracePeriod, "eviction-max-pod-grace-period", c.EvictionMaxPodGracePeriod, "Longest grace period, in seconds, of a pod evicted for a soft threshold; negative for the pod's own.")
	b.field("eviction-max-pod-grace-period", "evictionMaxPodGracePeriod")
	b.value(cliflag.NewMapStringString(&c.EvictionMinimumReclaim), "eviction-minimum-reclaim", "evictionMinimumReclaim", "Least amount reclaimed beyond a threshold when evicting, e.g. imagefs.available=2Gi.")
	b.fs.Int32Var(&c.PodsPerCore, "pods-per-core", c.PodsPerCore, "Number of pods per CPU core, 0 for no limit; the pod capacity is the smaller of this and --max-pods.")
	b.field("pods-per-core", "podsPerCore")
	b.fs.BoolVar(&c.ProtectKernelDefaults, "protect-kernel-defaults", c.ProtectKernelDefaults, "Refuse to start when kernel tunables differ from the kubelet's defaults.")
	b.field("protect-kernel-defaults", "protectKernelDefaults")
	b.str(&c.ReservedSystemCPUs, "reserved-cpus", "reservedSystemCPUs", "CPUs reserved for the system and Kubernetes, e.g. 0-1; overrides the cpu of --system-reserved and --kube-reserved.")
	b.str(&c.TopologyManagerScope, "topology-manager-scope", "topologyManagerScope", "Topology manager scope: container or pod.")
	b.value(cliflag.NewMapStringString(&c.TopologyManagerPolicyOptions), "topology-manager-policy-options", "topologyManagerPolicyOptions", "Topology manager policy options, key=value.")

	// Node allocatable.
	b.value(cliflag.NewMapStringString(&c.SystemReserved), "system-reserved", "systemReserved", "Resources reserved for the operating system, e.g. cpu=200m,memory=500Mi,ephemeral-storage=1Gi,pid=1000.")
	b.value(cliflag.NewMapStringString(&c.KubeReserved), "kube-reserved", "kubeReserved", "Resources reserved for Kubernetes components, e.g. cpu=200m,memory=500Mi,ephemeral-storage=1Gi,pid=1000.")
	b.fs.StringSliceVar(&c.EnforceNodeAllocatable, "enforce-node-allocatable", c.EnforceNodeAllocatable, "Where allocatable is enforced: none, or any of pods, system-reserved, system-reserved-compressible, kube-reserved, kube-reserved-compressible.")
	b.field("enforce-node-allocatable", "enforceNodeAllocatable")
	b.str(&c.SystemReservedCgroup, "system-reserved-cgroup", "systemReservedCgroup", "Absolute name of the cgroup of the system's reserved resources.")
	b.str(&c.KubeReservedCgroup, "kube-reserved-cgroup", "kubeReservedCgroup", "Absolute name of the cgroup of the Kubernetes components' reserved resources.")
	addLoggingFlags(b, &c.Logging)

	// Memory manager.
	b.str(&c.MemoryManagerPolicy, "memory-manager-policy", "memoryManagerPolicy", "Memory manager policy: None or Static.")
	b.value(&reservedMemoryValue{list: &c.ReservedMemory}, "reserved-memory", "reservedMemory", "Memory reserved per NUMA node, e.g. 0:memory=1Gi,hugepages-1M=2Gi; repeatable.")

	b.boolean(&c.RegisterNode, "register-node", "registerNode", "Register the node with the API server.")
	b.value(taintsValue{&c.RegisterWithTaints}, "register-with-taints", "registerWithTaints", `Taints the node registers with, comma-separated "<key>=<value>:<effect>".`)

	// Upstream deprecates every flag for a field, but these.
	notDeprecated := map[string]bool{"v": true, "vmodule": true, "log-flush-frequency": true, "provider-id": true, "fail-cgroupv1": true}
	b.fs.VisitAll(func(f *pflag.Flag) {
		if !notDeprecated[f.Name] {
			f.Deprecated = configDeprecation
		}
	})
	fs.AddFlagSet(b.fs)
	return b.fields
}

// addLoggingFlags registers upstream's logging flags (component-base's,
// bound to the logging section of the file), including the JSON format's
// flags, which component-base registers only when that format is linked.
func addLoggingFlags(b configBinder, c *logsapi.LoggingConfiguration) {
	logsapi.AddFlags(c, b.fs)
	for name, path := range map[string]string{
		"logging-format":            "logging.format",
		"log-flush-frequency":       "logging.flushFrequency",
		"v":                         "logging.verbosity",
		"vmodule":                   "logging.vmodule",
		"log-text-split-stream":     "logging.options.text.splitStream",
		"log-text-info-buffer-size": "logging.options.text.infoBufferSize",
		"log-json-split-stream":     "logging.options.json.splitStream",
		"log-json-info-buffer-size": "logging.options.json.infoBufferSize",
	} {
		b.field(name, path)
	}
	if b.fs.Lookup("log-json-split-stream") == nil {
		b.fs.BoolVar(&c.Options.JSON.SplitStream, "log-json-split-stream", false, "In JSON format, write errors to stderr and info messages to stdout.")
		b.fs.Var(&c.Options.JSON.InfoBufferSize, "log-json-info-buffer-size", "In JSON format with split streams, buffer info messages up to this size.")
	}
}
