package config

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// Upstream default values that other parts of this package refer to.
const (
	DefaultRootDir         = "/var/lib/kubelet"
	DefaultRuntimeEndpoint = "unix:///run/containerd/containerd.sock"
	DefaultPodLogsDir      = "/var/log/pods"
	DefaultResolvConf      = "/etc/resolv.conf"
	DefaultAddress         = "0.0.0.0"

	// DefaultHousekeepingInterval is cAdvisor's, which upstream exposes as
	// --housekeeping-interval; it is not a KubeletConfiguration field.
	DefaultHousekeepingInterval = 10 * time.Second

	// StandaloneReadOnlyAddress and StandaloneReadOnlyPort are berth's
	// defaults for the read-only endpoint when there is no API server; see
	// the package documentation.
	StandaloneReadOnlyAddress = "127.0.0.1"
	StandaloneReadOnlyPort    = 10255
)

// SetDefaults fills every unset field of cfg with the value the upstream
// kubelet (v1.37) would use, so that /configz shows a complete
// configuration. It mirrors SetDefaults_KubeletConfiguration in
// k8s.io/kubernetes pkg/kubelet/apis/config/v1beta1, with the feature gates
// at their v1.37 defaults. readOnlyPort is left alone here: its default
// depends on standalone mode and is decided by Parse.
func SetDefaults(cfg *kubeletconfig.KubeletConfiguration) {
	setDuration := func(d *metav1.Duration, def time.Duration) {
		if d.Duration == 0 {
			d.Duration = def
		}
	}
	setString := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	setInt32 := func(i *int32, def int32) {
		if *i == 0 {
			*i = def
		}
	}

	// Pod sources and the sync loop.
	setDuration(&cfg.SyncFrequency, time.Minute)
	setDuration(&cfg.FileCheckFrequency, 20*time.Second)
	setDuration(&cfg.HTTPCheckFrequency, 20*time.Second)

	// Servers.
	if cfg.EnableServer == nil {
		cfg.EnableServer = ptr.To(true)
	}
	setString(&cfg.Address, DefaultAddress)
	setInt32(&cfg.Port, 10250)
	if cfg.HealthzPort == nil {
		cfg.HealthzPort = ptr.To[int32](10248)
	}
	setString(&cfg.HealthzBindAddress, "127.0.0.1")
	if cfg.EnableDebuggingHandlers == nil {
		cfg.EnableDebuggingHandlers = ptr.To(true)
	}
	if cfg.EnableSystemLogHandler == nil {
		cfg.EnableSystemLogHandler = ptr.To(true)
	}
	if cfg.EnableProfilingHandler == nil {
		cfg.EnableProfilingHandler = ptr.To(true)
	}
	if cfg.EnableDebugFlagsHandler == nil {
		cfg.EnableDebugFlagsHandler = ptr.To(true)
	}
	setDuration(&cfg.StreamingConnectionIdleTimeout, 4*time.Hour)

	// Authentication and authorization of the main port.
	if cfg.Authentication.Anonymous.Enabled == nil {
		cfg.Authentication.Anonymous.Enabled = ptr.To(false)
	}
	if cfg.Authentication.Webhook.Enabled == nil {
		cfg.Authentication.Webhook.Enabled = ptr.To(true)
	}
	setDuration(&cfg.Authentication.Webhook.CacheTTL, 2*time.Minute)
	if cfg.Authorization.Mode == "" {
		cfg.Authorization.Mode = kubeletconfig.KubeletAuthorizationModeWebhook
	}
	setDuration(&cfg.Authorization.Webhook.CacheAuthorizedTTL, 5*time.Minute)
	setDuration(&cfg.Authorization.Webhook.CacheUnauthorizedTTL, 30*time.Second)

	// Images.
	if cfg.RegistryPullQPS == nil {
		cfg.RegistryPullQPS = ptr.To[int32](5)
	}
	setInt32(&cfg.RegistryBurst, 10)
	if cfg.SerializeImagePulls == nil {
		// Upstream: setting maxParallelImagePulls > 1 alone implies parallel
		// pulls, so users need not set both fields.
		serialize := cfg.MaxParallelImagePulls == nil || *cfg.MaxParallelImagePulls < 2
		cfg.SerializeImagePulls = ptr.To(serialize)
	}
	setDuration(&cfg.ImageMinimumGCAge, 2*time.Minute)
	if cfg.ImageGCHighThresholdPercent == nil {
		cfg.ImageGCHighThresholdPercent = ptr.To[int32](85)
	}
	if cfg.ImageGCLowThresholdPercent == nil {
		cfg.ImageGCLowThresholdPercent = ptr.To[int32](80)
	}
	if cfg.ImagePullCredentialsVerificationPolicy == "" {
		// KubeletEnsureSecretPulledImages is on by default since v1.35.
		cfg.ImagePullCredentialsVerificationPolicy = kubeletconfig.NeverVerifyPreloadedImages
	}

	// Events and API client.
	if cfg.EventRecordQPS == nil {
		cfg.EventRecordQPS = ptr.To[int32](50)
	}
	setInt32(&cfg.EventBurst, 100)
	setString(&cfg.ContentType, "application/vnd.kubernetes.protobuf")
	if cfg.KubeAPIQPS == nil {
		cfg.KubeAPIQPS = ptr.To[int32](50)
	}
	setInt32(&cfg.KubeAPIBurst, 100)

	// Node status and lease. The report frequency follows an explicitly set
	// update frequency, for backward compatibility (as upstream).
	if cfg.NodeStatusReportFrequency.Duration == 0 {
		if cfg.NodeStatusUpdateFrequency.Duration == 0 {
			cfg.NodeStatusReportFrequency.Duration = 5 * time.Minute
		} else {
			cfg.NodeStatusReportFrequency = cfg.NodeStatusUpdateFrequency
		}
	}
	setDuration(&cfg.NodeStatusUpdateFrequency, 10*time.Second)
	setInt32(&cfg.NodeLeaseDurationSeconds, 40)
	if cfg.NodeStatusMaxImages == nil {
		cfg.NodeStatusMaxImages = ptr.To[int32](50)
	}
	if cfg.RegisterNode == nil {
		cfg.RegisterNode = ptr.To(true)
	}

	// Resources, cgroups and resource managers.
	if cfg.OOMScoreAdj == nil {
		cfg.OOMScoreAdj = ptr.To[int32](-999)
	}
	setDuration(&cfg.VolumeStatsAggPeriod, time.Minute)
	if cfg.CgroupsPerQOS == nil {
		cfg.CgroupsPerQOS = ptr.To(true)
	}
	setString(&cfg.CgroupDriver, "cgroupfs")
	setString(&cfg.CPUManagerPolicy, "none")
	setDuration(&cfg.CPUManagerReconcilePeriod, 10*time.Second)
	setString(&cfg.MemoryManagerPolicy, kubeletconfig.NoneMemoryManagerPolicy)
	setString(&cfg.TopologyManagerPolicy, kubeletconfig.NoneTopologyManagerPolicy)
	setString(&cfg.TopologyManagerScope, kubeletconfig.ContainerTopologyManagerScope)
	setInt32(&cfg.MaxPods, 110)
	if cfg.PodPidsLimit == nil || *cfg.PodPidsLimit < 0 {
		cfg.PodPidsLimit = ptr.To[int64](-1)
	}
	if cfg.CPUCFSQuota == nil {
		cfg.CPUCFSQuota = ptr.To(true)
	}
	if cfg.CPUCFSQuotaPeriod == nil {
		cfg.CPUCFSQuotaPeriod = &metav1.Duration{Duration: 100 * time.Millisecond}
	}
	if cfg.MaxOpenFiles == 0 {
		cfg.MaxOpenFiles = 1000000
	}
	if cfg.EnforceNodeAllocatable == nil {
		cfg.EnforceNodeAllocatable = []string{"pods"}
	}
	if cfg.MemoryReservationPolicy == "" {
		cfg.MemoryReservationPolicy = kubeletconfig.NoneMemoryReservationPolicy
	}
	if cfg.LocalStorageCapacityIsolation == nil {
		cfg.LocalStorageCapacityIsolation = ptr.To(true)
	}
	if cfg.FailSwapOn == nil {
		cfg.FailSwapOn = ptr.To(true)
	}
	if cfg.FailCgroupV1 == nil {
		cfg.FailCgroupV1 = ptr.To(true)
	}
	if cfg.SeccompDefault == nil {
		cfg.SeccompDefault = ptr.To(false)
	}

	// Eviction.
	setDuration(&cfg.EvictionPressureTransitionPeriod, 5*time.Minute)
	if cfg.MergeDefaultEvictionSettings == nil {
		cfg.MergeDefaultEvictionSettings = ptr.To(false)
	}

	// Networking and DNS.
	setString(&cfg.HairpinMode, kubeletconfig.PromiscuousBridge)
	if cfg.ResolverConfig == nil {
		// nil means unset; an explicit "" disables host DNS inheritance.
		cfg.ResolverConfig = ptr.To(DefaultResolvConf)
	}
	if cfg.MakeIPTablesUtilChains == nil {
		cfg.MakeIPTablesUtilChains = ptr.To(true)
	}
	if cfg.IPTablesMasqueradeBit == nil {
		cfg.IPTablesMasqueradeBit = ptr.To[int32](14)
	}
	if cfg.IPTablesDropBit == nil {
		cfg.IPTablesDropBit = ptr.To[int32](15)
	}

	// Container runtime, logs and volumes.
	setString(&cfg.ContainerRuntimeEndpoint, DefaultRuntimeEndpoint)
	setDuration(&cfg.RuntimeRequestTimeout, 2*time.Minute)
	setString(&cfg.PodLogsDir, DefaultPodLogsDir)
	setString(&cfg.ContainerLogMaxSize, "10Mi")
	if cfg.ContainerLogMaxFiles == nil {
		cfg.ContainerLogMaxFiles = ptr.To[int32](5)
	}
	if cfg.ContainerLogMaxWorkers == nil {
		cfg.ContainerLogMaxWorkers = ptr.To[int32](1)
	}
	if cfg.ContainerLogMonitorInterval == nil {
		cfg.ContainerLogMonitorInterval = &metav1.Duration{Duration: 10 * time.Second}
	}
	if cfg.ConfigMapAndSecretChangeDetectionStrategy == "" {
		cfg.ConfigMapAndSecretChangeDetectionStrategy = kubeletconfig.WatchChangeDetectionStrategy
	}
	if cfg.EnableControllerAttachDetach == nil {
		cfg.EnableControllerAttachDetach = ptr.To(true)
	}
	setString(&cfg.VolumePluginDir, "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/")
	if cfg.CrashLoopBackOff.MaxContainerRestartPeriod == nil {
		// KubeletCrashLoopBackOffMax is on by default since v1.35.
		cfg.CrashLoopBackOff.MaxContainerRestartPeriod = &metav1.Duration{Duration: 300 * time.Second}
	}

	logsapi.SetRecommendedLoggingConfiguration(&cfg.Logging)
}
