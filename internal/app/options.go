// Package app wires berth's components together from Options and runs them.
// It holds no logic of its own beyond start-up order and shutdown.
package app

import (
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// Options is everything berth needs to start, after the KubeletConfiguration
// file and the command-line flags have been merged, defaulted and validated
// (see internal/config).
type Options struct {
	NodeName string
	// NodeIP is --node-ip: one address or a dual-stack pair, comma-separated
	// (primary first). Empty: berth uses the address of the default route.
	NodeIP string

	RootDir    string // --root-dir, default /var/lib/kubelet
	PodLogsDir string // podLogsDir, default /var/log/pods

	StaticPodPath      string        // staticPodPath / --pod-manifest-path; empty disables the file source
	FileCheckFrequency time.Duration // fileCheckFrequency: periodic rescan of StaticPodPath
	StaticPodURL       string        // staticPodURL / --manifest-url; empty disables the URL source
	StaticPodURLHeader http.Header   // staticPodURLHeader / --manifest-url-header
	HTTPCheckFrequency time.Duration // httpCheckFrequency: time between reads of StaticPodURL
	SyncFrequency      time.Duration // syncFrequency: periodic resync of every pod

	RuntimeEndpoint       string        // containerRuntimeEndpoint
	ImageEndpoint         string        // imageServiceEndpoint, defaults to RuntimeEndpoint
	RuntimeRequestTimeout time.Duration // runtimeRequestTimeout
	CgroupDriver          string        // cgroupDriver: cgroupfs or systemd

	MaxParallelImagePulls int // 1 when serializeImagePulls is true

	// ImagePullCredentialsVerificationPolicy and
	// PreloadedImagesVerificationAllowlist: when a pod must show that its
	// own credentials could pull an image already on the node (upstream's
	// KEP-2535); empty means NeverVerifyPreloadedImages.
	ImagePullCredentialsVerificationPolicy string
	PreloadedImagesVerificationAllowlist   []string

	// ImageCredentialProviderConfig and ImageCredentialProviderBinDir are
	// the credential provider plugins' configuration (a file or a
	// directory) and binaries; no config, no plugins.
	// ImageCredentialProviderServiceAccountTokens is the
	// KubeletServiceAccountTokenForCredentialProviders gate (tokenAttributes).
	ImageCredentialProviderConfig               string
	ImageCredentialProviderBinDir               string
	ImageCredentialProviderServiceAccountTokens bool

	// ShutdownGracePeriods are graceful node shutdown's budgets by pod
	// priority, lowest first (shutdownGracePeriodByPodPriority, or
	// shutdownGracePeriod and shutdownGracePeriodCriticalPods); empty
	// means berth takes no inhibitor lock.
	ShutdownGracePeriods []kubeletconfig.ShutdownGracePeriodByPodPriority

	// AllowedUnsafeSysctls are the sysctls (or patterns ending in *) pods
	// may set beside the safe ones (allowedUnsafeSysctls).
	AllowedUnsafeSysctls []string
	// SeccompDefault runs containers without a seccomp profile under the
	// runtime's default one (seccompDefault).
	SeccompDefault bool
	// ProtectKernelDefaults refuses to start when a kernel setting the
	// kubelet guards differs from its value, instead of setting it
	// (protectKernelDefaults).
	ProtectKernelDefaults bool
	// UserNamespacesIDsPerPod is how many IDs each pod with hostUsers:
	// false gets (userNamespaces.idsPerPod, default 65536).
	UserNamespacesIDsPerPod uint32

	// StaticPodSecurity is the Pod Security Standard static pods must
	// meet, "<level>[:<version>]" (--static-pod-security, berth's own);
	// empty checks nothing. PodSecurityFloor is the same for API pods
	// (--pod-security-floor).
	StaticPodSecurity string
	PodSecurityFloor  string
	// NodeAutonomy checkpoints the node's API pods and what they read
	// under RootDir/autonomy and runs them from there when the API
	// server has not listed them within NodeAutonomyWait of the start
	// (--node-autonomy, --node-autonomy-api-wait; berth's own).
	NodeAutonomy     bool
	NodeAutonomyWait time.Duration

	ClusterDNS    []string
	ClusterDomain string
	ResolvConf    string // resolvConf, "" disables host DNS inheritance

	// Address is where the kubelet API (Port) and the read-only port
	// listen: address, 0.0.0.0 with Kubeconfig and 127.0.0.1 standalone.
	Address         string
	ReadOnlyAddress string // same as Address, which both ports share
	ReadOnlyPort    int32  // readOnlyPort; 0 disables it

	HealthzBindAddress string // healthzBindAddress (127.0.0.1)
	HealthzPort        int32  // healthzPort (10248); 0 disables the healthz server

	// TLS of the kubelet API. With both files empty berth serves
	// CertDir/kubelet.crt and kubelet.key, generating a self-signed pair if
	// they are missing, as upstream; otherwise both are set.
	TLSCertFile       string   // tlsCertFile / --tls-cert-file
	TLSPrivateKeyFile string   // tlsPrivateKeyFile / --tls-private-key-file
	TLSMinVersion     string   // tlsMinVersion, a name cliflag.TLSVersion knows; empty means Go's default
	TLSCipherSuites   []string // tlsCipherSuites, names cliflag.TLSCipherSuites knows; empty means Go's defaults
	CertDir           string   // --cert-dir, default RootDir/pki

	// Authentication and Authorization of the kubelet API, defaulted: every
	// pointer is set and the TTLs are non-zero. In standalone mode the
	// webhooks are off and Mode is AlwaysAllow unless the user set them
	// (setting them without Kubeconfig is an error), so only clients with
	// a certificate from X509.ClientCAFile, or anonymous ones if enabled,
	// get in. See internal/config's package documentation.
	Authentication kubeletconfig.KubeletAuthentication
	Authorization  kubeletconfig.KubeletAuthorization

	EnableDebuggingHandlers bool // enableDebuggingHandlers: logs, exec, attach, port-forward, run
	EnableSystemLogHandler  bool // enableSystemLogHandler: /logs/
	EnableProfilingHandler  bool // enableProfilingHandler: /debug/pprof/

	// Container log rotation.
	ContainerLogMaxSize         int64         // containerLogMaxSize in bytes (10Mi); negative disables rotation, as upstream
	ContainerLogMaxFiles        int           // containerLogMaxFiles (5), at least 2
	ContainerLogMaxWorkers      int           // containerLogMaxWorkers (1), at least 1
	ContainerLogMonitorInterval time.Duration // containerLogMonitorInterval (10s), at least 3s

	// Stats.
	HousekeepingInterval time.Duration // --housekeeping-interval (10s): how often container stats are collected

	// Dead containers (the deprecated upstream flags): kept at least
	// MinimumContainerTTL (--minimum-container-ttl-duration, 0), and at
	// most MaxDeadContainersPerContainer exited instances per container
	// (--maximum-dead-containers-per-container, 1; negative: all).
	MinimumContainerTTL           time.Duration
	MaxDeadContainersPerContainer int
	VolumeStatsAggPeriod          time.Duration // volumeStatsAggPeriod (1m); negative disables volume usage calculation
	KubeletCgroups                string        // kubeletCgroups: absolute cgroup name of the kubelet, empty if none
	SystemCgroups                 string        // systemCgroups: absolute cgroup name of the system processes, empty if none

	// Kubeconfig is the path of the kubeconfig for the API server; empty
	// means standalone (static pods only, no node object).
	Kubeconfig string
	// BootstrapKubeconfig (--bootstrap-kubeconfig) is used to get a client
	// certificate when Kubeconfig is missing or its certificate expired;
	// the kubeconfig written then points at CertDir's
	// kubelet-client-current.pem. Empty: no TLS bootstrap.
	BootstrapKubeconfig string
	// RotateCertificates (rotateCertificates) renews the client
	// certificate through the certificates API at 70-90 % of its lifetime.
	RotateCertificates bool
	// ServerTLSBootstrap (serverTLSBootstrap) serves the kubelet API with a
	// certificate from the certificates API (kubelet-server-current.pem in
	// CertDir), renewed likewise, instead of TLSCertFile or a self-signed one.
	ServerTLSBootstrap bool
	KubeAPIQPS         float32 // kubeAPIQPS
	KubeAPIBurst       int     // kubeAPIBurst
	// EventRecordQPS and EventBurst limit the events posted, on a client of
	// their own as upstream's, so that a burst of events never delays pod
	// starts or status; 0 QPS means no limit.
	EventRecordQPS float32 // eventRecordQPS
	EventBurst     int     // eventBurst

	// Node registration and status (used only with Kubeconfig).
	NodeLabels map[string]string // --node-labels
	// DeclaredFeatures are the node's status.declaredFeatures.
	DeclaredFeatures []string
	// ExternalCloudProvider is --cloud-provider=external: the Node
	// registers with the node.cloudprovider.kubernetes.io/uninitialized
	// taint, which the provider removes.
	ExternalCloudProvider     bool
	ProviderID                string            // providerID / --provider-id: the Node's spec.providerID
	RegisterWithTaints        []v1.Taint        // registerWithTaints
	MaxPods                   int               // maxPods
	KubeReserved              v1.ResourceList   // kubeReserved
	SystemReserved            v1.ResourceList   // systemReserved
	EvictionHard              map[string]string // evictionHard, e.g. memory.available: 100Mi
	NodeStatusUpdateFrequency time.Duration     // nodeStatusUpdateFrequency (10 s)
	NodeStatusReportFrequency time.Duration     // nodeStatusReportFrequency (5 min)
	NodeLeaseDurationSeconds  int32             // nodeLeaseDurationSeconds (40)
	Port                      int32             // port: the kubelet API port reported in the Node's daemonEndpoints

	// Cgroups are the node's cgroup settings (internal/cm).
	Cgroups CgroupOptions

	// Config is the full merged configuration.
	Config *kubeletconfig.KubeletConfiguration
	// Configz is what /configz shows: the fields of Config berth acts on
	// (config.InForce), so that it never reports a setting not in force.
	Configz any
}

// CgroupOptions are the settings of the node's cgroups, defaulted.
type CgroupOptions struct {
	PerQOS            bool          // cgroupsPerQOS (true)
	Root              string        // cgroupRoot; "/" when empty with PerQOS
	CPUCFSQuota       bool          // cpuCFSQuota (true)
	CPUCFSQuotaPeriod time.Duration // cpuCFSQuotaPeriod (100 ms)
	PodPidsLimit      int64         // podPidsLimit; -1 or 0 is none
	// EnforceNodeAllocatable is enforceNodeAllocatable (["pods"]) without
	// "none".
	EnforceNodeAllocatable []string
	KubeReservedCgroup     string // kubeReservedCgroup
	SystemReservedCgroup   string // systemReservedCgroup
}
