package config

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// flagValues holds what the command line says. Only flags the user gave
// (pflag's Changed) are copied into the configuration, so the defaults
// shown here are for the help text only.
type flagValues struct {
	config              string
	kubeconfig          string
	bootstrapKubeconfig string
	rootDir             string
	hostnameOverride    string
	nodeIP              string
	nodeLabels          map[string]string
	certDir             string
	housekeeping        time.Duration
	version             bool

	// berth's own settings (no KubeletConfiguration field).
	staticPodSecurity string
	podSecurityFloor  string

	podManifestPath       string
	runtimeEndpoint       string
	imageEndpoint         string
	address               string
	readOnlyPort          int32
	cgroupDriver          string
	syncFrequency         time.Duration
	fileCheckFrequency    time.Duration
	runtimeRequestTimeout time.Duration
	maxPods               int32
	clusterDNS            []string
	clusterDomain         string
	resolvConf            string
	verbosity             uint32

	port                      int32
	kubeAPIQPS                int32
	kubeAPIBurst              int32
	eventRecordQPS            int32
	eventBurst                int32
	registerWithTaints        []v1.Taint
	allowedUnsafeSysctls      []string
	kubeReserved              map[string]string
	systemReserved            map[string]string
	evictionHard              map[string]string
	nodeStatusUpdateFrequency time.Duration

	healthzBindAddress      string
	healthzPort             int32
	tlsCertFile             string
	tlsPrivateKeyFile       string
	tlsMinVersion           string
	tlsCipherSuites         []string
	anonymousAuth           bool
	authnWebhook            bool
	authnWebhookCacheTTL    time.Duration
	clientCAFile            string
	authorizationMode       string
	authzCacheAuthorizedTTL time.Duration
	authzCacheDeniedTTL     time.Duration
	enableDebuggingHandlers bool
	containerLogMaxSize     string
	containerLogMaxFiles    int32
	volumeStatsAggPeriod    time.Duration
	kubeletCgroups          string
	systemCgroups           string

	rotateCertificates       bool
	rotateServerCertificates bool
}

func newFlagSet(out io.Writer) (*pflag.FlagSet, *flagValues) {
	v := &flagValues{nodeLabels: map[string]string{}}
	fs := pflag.NewFlagSet("berth", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: berth [flags]\n\n"+
			"berth is a kubelet: it runs the pods of one node on a CRI container runtime.\n"+
			"Flags override the --config file, which overrides the built-in defaults.\n\n"+
			"Flags:\n%s", fs.FlagUsages())
	}

	// Flags that are not part of KubeletConfiguration (upstream's KubeletFlags).
	fs.StringVar(&v.config, "config", "", "Path to a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON). Flags override values from this file.")
	fs.StringVar(&v.kubeconfig, "kubeconfig", "", "Path to a kubeconfig file for the API server. Omit it to run standalone (static pods only, no Node object).")
	fs.StringVar(&v.bootstrapKubeconfig, "bootstrap-kubeconfig", "", "Path to a kubeconfig used to get a client certificate for the node (TLS bootstrap) when the --kubeconfig file is missing or its certificate has expired; the certificate is kept in --cert-dir and a kubeconfig pointing at it is written to --kubeconfig.")
	fs.StringVar(&v.rootDir, "root-dir", DefaultRootDir, "Directory for berth's files (pod volumes, plugins, state).")
	fs.StringVar(&v.hostnameOverride, "hostname-override", "", "Node name to use instead of the host name.")
	fs.StringVar(&v.nodeIP, "node-ip", "", "IP address of the node. If unset, berth uses the address of the default route.")
	// Upstream's ConfigurationMap: repeated flags add up, a key without
	// "=" gets an empty value. Validated in Parse.
	nodeLabels := cliflag.ConfigurationMap(v.nodeLabels)
	fs.Var(&nodeLabels, "node-labels", "Labels to add when registering the node, key=value pairs separated by ','. Labels in the kubernetes.io and k8s.io namespaces must be ones a kubelet may set: "+kubeletLabelsHelp()+".")
	fs.StringVar(&v.certDir, "cert-dir", "", "Directory of the node's client certificates (TLS bootstrap and rotation) and of the kubelet API's TLS certificate and key when --tls-cert-file and --tls-private-key-file are not given (default <root-dir>/pki).")
	fs.DurationVar(&v.housekeeping, "housekeeping-interval", DefaultHousekeepingInterval, "Time between two collections of container stats.")

	// berth's own flags: settings upstream's kubelet does not have.
	fs.StringVar(&v.staticPodSecurity, "static-pod-security", "", `Pod Security Standard static pods must meet, "<level>[:<version>]" (privileged, baseline or restricted; version "latest" or "v1.<minor>", default latest), checked as PodSecurity admission would. A refused manifest does not run; an earlier version of it keeps running. Empty checks nothing.`)
	fs.StringVar(&v.podSecurityFloor, "pod-security-floor", "", `Pod Security Standard every pod from the API server must also meet at this node, "<level>[:<version>]"; a pod that does not is rejected at admission. Empty checks nothing.`)

	// Flags that set KubeletConfiguration fields; see configFlags.
	fs.StringVar(&v.podManifestPath, "pod-manifest-path", "", "Directory of static pod manifests, or a single manifest file (staticPodPath).")
	fs.StringVar(&v.runtimeEndpoint, "container-runtime-endpoint", DefaultRuntimeEndpoint, "CRI runtime service endpoint, a unix:// socket (containerRuntimeEndpoint).")
	fs.StringVar(&v.imageEndpoint, "image-service-endpoint", "", "CRI image service endpoint; defaults to --container-runtime-endpoint (imageServiceEndpoint).")
	fs.StringVar(&v.address, "address", "", "IP address to serve on (address). Default 127.0.0.1 when standalone, 0.0.0.0 with --kubeconfig.")
	fs.Int32Var(&v.readOnlyPort, "read-only-port", 0, "Port of the unauthenticated read-only endpoint, 0 disables it (readOnlyPort). Default 10255 when standalone, 0 with --kubeconfig.")
	fs.StringVar(&v.cgroupDriver, "cgroup-driver", "cgroupfs", "Cgroup driver: cgroupfs or systemd (cgroupDriver).")
	fs.DurationVar(&v.syncFrequency, "sync-frequency", time.Minute, "Maximum time between two syncs of every pod (syncFrequency).")
	fs.DurationVar(&v.fileCheckFrequency, "file-check-frequency", 20*time.Second, "Time between rescans of the static pod path (fileCheckFrequency).")
	fs.DurationVar(&v.runtimeRequestTimeout, "runtime-request-timeout", 2*time.Minute, "Timeout of CRI requests other than long-running ones such as pulls (runtimeRequestTimeout).")
	fs.Int32Var(&v.maxPods, "max-pods", 110, "Number of pods that can run on this node (maxPods).")
	fs.StringSliceVar(&v.clusterDNS, "cluster-dns", nil, "Comma-separated DNS server IPs for pods with dnsPolicy ClusterFirst (clusterDNS).")
	fs.StringVar(&v.clusterDomain, "cluster-domain", "", "Cluster domain added to pods' DNS search list (clusterDomain).")
	fs.StringVar(&v.resolvConf, "resolv-conf", DefaultResolvConf, "Host resolver file pods inherit DNS settings from; empty disables it (resolvConf).")
	fs.Int32Var(&v.port, "port", 10250, "Port of the kubelet API, reported in the Node's daemonEndpoints (port).")
	fs.Int32Var(&v.kubeAPIQPS, "kube-api-qps", 50, "Queries per second to the API server, >= 0 (kubeAPIQPS).")
	fs.Int32Var(&v.kubeAPIBurst, "kube-api-burst", 100, "Burst of queries to the API server, >= 0 (kubeAPIBurst).")
	fs.Int32Var(&v.eventRecordQPS, "event-qps", 50, "Events posted per second, >= 0; 0 means no limit (eventRecordQPS).")
	fs.Int32Var(&v.eventBurst, "event-burst", 100, "Burst of events posted, >= 0 (eventBurst).")
	fs.StringSliceVar(&v.allowedUnsafeSysctls, "allowed-unsafe-sysctls", nil, "Comma-separated unsafe sysctls or sysctl patterns (ending in *) pods may set, beside the safe ones (allowedUnsafeSysctls).")
	fs.Var(taintsValue{&v.registerWithTaints}, "register-with-taints", `Taints the node registers with, comma-separated "<key>=<value>:<effect>" (registerWithTaints).`)
	fs.Var(cliflag.NewMapStringString(&v.kubeReserved), "kube-reserved", "Resources reserved for Kubernetes components, e.g. cpu=200m,memory=500Mi,ephemeral-storage=1Gi,pid=1000 (kubeReserved).")
	fs.Var(cliflag.NewMapStringString(&v.systemReserved), "system-reserved", "Resources reserved for the operating system, e.g. cpu=200m,memory=500Mi (systemReserved).")
	fs.Var(cliflag.NewLangleSeparatedMapStringString(&v.evictionHard), "eviction-hard", "Hard eviction thresholds, e.g. memory.available<1Gi,nodefs.available<10%; they are held back from the node's allocatable (evictionHard).")
	fs.DurationVar(&v.nodeStatusUpdateFrequency, "node-status-update-frequency", 10*time.Second, "How often the node status is computed and, when changed, posted (nodeStatusUpdateFrequency).")

	// The kubelet API, its TLS, authentication and authorization.
	fs.StringVar(&v.healthzBindAddress, "healthz-bind-address", "127.0.0.1", "IP address of the healthz endpoint (healthzBindAddress).")
	fs.Int32Var(&v.healthzPort, "healthz-port", 10248, "Port of the healthz endpoint, 0 disables it (healthzPort).")
	fs.StringVar(&v.tlsCertFile, "tls-cert-file", "", "x509 certificate of the kubelet API, intermediates appended. Without it and --tls-private-key-file, a self-signed pair is kept in --cert-dir (tlsCertFile).")
	fs.StringVar(&v.tlsPrivateKeyFile, "tls-private-key-file", "", "x509 private key matching --tls-cert-file (tlsPrivateKeyFile).")
	fs.StringVar(&v.tlsMinVersion, "tls-min-version", "", "Minimum TLS version: "+strings.Join(cliflag.TLSPossibleVersions(), ", ")+"; empty means Go's default (tlsMinVersion).")
	fs.StringSliceVar(&v.tlsCipherSuites, "tls-cipher-suites", nil, "Comma-separated cipher suites for TLS 1.2, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256; empty means Go's defaults (tlsCipherSuites).")
	fs.BoolVar(&v.anonymousAuth, "anonymous-auth", false, "Let requests no authenticator rejects through as system:anonymous (authentication.anonymous.enabled).")
	fs.BoolVar(&v.authnWebhook, "authentication-token-webhook", true, "Authenticate bearer tokens with the TokenReview API; needs --kubeconfig, off by default when standalone (authentication.webhook.enabled).")
	fs.DurationVar(&v.authnWebhookCacheTTL, "authentication-token-webhook-cache-ttl", 2*time.Minute, "How long TokenReview results are cached (authentication.webhook.cacheTTL).")
	fs.StringVar(&v.clientCAFile, "client-ca-file", "", "CA bundle: a client certificate it signed authenticates as the certificate's CommonName (authentication.x509.clientCAFile).")
	fs.StringVar(&v.authorizationMode, "authorization-mode", string(kubeletconfig.KubeletAuthorizationModeWebhook), "AlwaysAllow, or Webhook to ask the SubjectAccessReview API; Webhook needs --kubeconfig, AlwaysAllow is the default when standalone (authorization.mode).")
	fs.DurationVar(&v.authzCacheAuthorizedTTL, "authorization-webhook-cache-authorized-ttl", 5*time.Minute, "How long allowed SubjectAccessReview results are cached (authorization.webhook.cacheAuthorizedTTL).")
	fs.DurationVar(&v.authzCacheDeniedTTL, "authorization-webhook-cache-unauthorized-ttl", 30*time.Second, "How long denied SubjectAccessReview results are cached (authorization.webhook.cacheUnauthorizedTTL).")
	fs.BoolVar(&v.rotateCertificates, "rotate-certificates", false, "Rotate the node's client certificate through the certificates API as it nears expiry (rotateCertificates).")
	fs.BoolVar(&v.rotateServerCertificates, "rotate-server-certificates", false, "Request the kubelet API's serving certificate through the certificates API (signer kubernetes.io/kubelet-serving) and rotate it; the CertificateSigningRequests need approval (serverTLSBootstrap).")
	fs.BoolVar(&v.enableDebuggingHandlers, "enable-debugging-handlers", true, "Serve container logs, exec, attach, port-forward and run on the kubelet API (enableDebuggingHandlers).")

	// Container logs and stats.
	fs.StringVar(&v.containerLogMaxSize, "container-log-max-size", "10Mi", "Size at which a container log file is rotated, a quantity such as 10Mi; negative disables rotation (containerLogMaxSize).")
	fs.Int32Var(&v.containerLogMaxFiles, "container-log-max-files", 5, "Most log files kept per container, at least 2 (containerLogMaxFiles).")
	fs.DurationVar(&v.volumeStatsAggPeriod, "volume-stats-agg-period", time.Minute, "How often volume disk usage is computed; negative disables it (volumeStatsAggPeriod).")
	fs.StringVar(&v.kubeletCgroups, "kubelet-cgroups", "", "Absolute name of the cgroup berth runs in, for stats (kubeletCgroups).")
	fs.StringVar(&v.systemCgroups, "system-cgroups", "", "Absolute name of the cgroup of the system's processes, for stats; needs cgroupRoot (systemCgroups).")
	// Named "v" with shorthand "v", as klog's flag appears through
	// pflag.AddGoFlag, so -v 2, -v=2 and --v=2 all work.
	fs.Uint32VarP(&v.verbosity, "v", "v", 0, "Log verbosity (logging.verbosity).")

	fs.BoolVar(&v.version, "version", false, "Print the version and exit.")
	return fs, v
}

// configFlag ties a flag to the KubeletConfiguration field it sets.
type configFlag struct {
	name  string // flag name
	field string // JSON path of the field
	apply func(*kubeletconfig.KubeletConfiguration)
}

func (v *flagValues) configFlags() []configFlag {
	return []configFlag{
		{"pod-manifest-path", "staticPodPath", func(c *kubeletconfig.KubeletConfiguration) { c.StaticPodPath = v.podManifestPath }},
		{"container-runtime-endpoint", "containerRuntimeEndpoint", func(c *kubeletconfig.KubeletConfiguration) { c.ContainerRuntimeEndpoint = v.runtimeEndpoint }},
		{"image-service-endpoint", "imageServiceEndpoint", func(c *kubeletconfig.KubeletConfiguration) { c.ImageServiceEndpoint = v.imageEndpoint }},
		{"address", "address", func(c *kubeletconfig.KubeletConfiguration) { c.Address = v.address }},
		{"read-only-port", "readOnlyPort", func(c *kubeletconfig.KubeletConfiguration) { c.ReadOnlyPort = v.readOnlyPort }},
		{"cgroup-driver", "cgroupDriver", func(c *kubeletconfig.KubeletConfiguration) { c.CgroupDriver = v.cgroupDriver }},
		{"sync-frequency", "syncFrequency", func(c *kubeletconfig.KubeletConfiguration) {
			c.SyncFrequency = metav1.Duration{Duration: v.syncFrequency}
		}},
		{"file-check-frequency", "fileCheckFrequency", func(c *kubeletconfig.KubeletConfiguration) {
			c.FileCheckFrequency = metav1.Duration{Duration: v.fileCheckFrequency}
		}},
		{"runtime-request-timeout", "runtimeRequestTimeout", func(c *kubeletconfig.KubeletConfiguration) {
			c.RuntimeRequestTimeout = metav1.Duration{Duration: v.runtimeRequestTimeout}
		}},
		{"max-pods", "maxPods", func(c *kubeletconfig.KubeletConfiguration) { c.MaxPods = v.maxPods }},
		{"cluster-dns", "clusterDNS", func(c *kubeletconfig.KubeletConfiguration) { c.ClusterDNS = v.clusterDNS }},
		{"cluster-domain", "clusterDomain", func(c *kubeletconfig.KubeletConfiguration) { c.ClusterDomain = v.clusterDomain }},
		{"resolv-conf", "resolvConf", func(c *kubeletconfig.KubeletConfiguration) { c.ResolverConfig = ptr.To(v.resolvConf) }},
		{"port", "port", func(c *kubeletconfig.KubeletConfiguration) { c.Port = v.port }},
		{"kube-api-qps", "kubeAPIQPS", func(c *kubeletconfig.KubeletConfiguration) { c.KubeAPIQPS = ptr.To(v.kubeAPIQPS) }},
		{"kube-api-burst", "kubeAPIBurst", func(c *kubeletconfig.KubeletConfiguration) { c.KubeAPIBurst = v.kubeAPIBurst }},
		{"event-qps", "eventRecordQPS", func(c *kubeletconfig.KubeletConfiguration) { c.EventRecordQPS = ptr.To(v.eventRecordQPS) }},
		{"event-burst", "eventBurst", func(c *kubeletconfig.KubeletConfiguration) { c.EventBurst = v.eventBurst }},
		{"allowed-unsafe-sysctls", "allowedUnsafeSysctls", func(c *kubeletconfig.KubeletConfiguration) {
			c.AllowedUnsafeSysctls = slices.Clone(v.allowedUnsafeSysctls)
		}},
		{"register-with-taints", "registerWithTaints", func(c *kubeletconfig.KubeletConfiguration) {
			c.RegisterWithTaints = slices.Clone(v.registerWithTaints)
		}},
		{"kube-reserved", "kubeReserved", func(c *kubeletconfig.KubeletConfiguration) { c.KubeReserved = maps.Clone(v.kubeReserved) }},
		{"system-reserved", "systemReserved", func(c *kubeletconfig.KubeletConfiguration) { c.SystemReserved = maps.Clone(v.systemReserved) }},
		{"eviction-hard", "evictionHard", func(c *kubeletconfig.KubeletConfiguration) { c.EvictionHard = maps.Clone(v.evictionHard) }},
		{"node-status-update-frequency", "nodeStatusUpdateFrequency", func(c *kubeletconfig.KubeletConfiguration) {
			c.NodeStatusUpdateFrequency = metav1.Duration{Duration: v.nodeStatusUpdateFrequency}
		}},
		{"healthz-bind-address", "healthzBindAddress", func(c *kubeletconfig.KubeletConfiguration) { c.HealthzBindAddress = v.healthzBindAddress }},
		{"healthz-port", "healthzPort", func(c *kubeletconfig.KubeletConfiguration) { c.HealthzPort = ptr.To(v.healthzPort) }},
		{"tls-cert-file", "tlsCertFile", func(c *kubeletconfig.KubeletConfiguration) { c.TLSCertFile = v.tlsCertFile }},
		{"tls-private-key-file", "tlsPrivateKeyFile", func(c *kubeletconfig.KubeletConfiguration) { c.TLSPrivateKeyFile = v.tlsPrivateKeyFile }},
		{"tls-min-version", "tlsMinVersion", func(c *kubeletconfig.KubeletConfiguration) { c.TLSMinVersion = v.tlsMinVersion }},
		{"tls-cipher-suites", "tlsCipherSuites", func(c *kubeletconfig.KubeletConfiguration) { c.TLSCipherSuites = slices.Clone(v.tlsCipherSuites) }},
		{"anonymous-auth", "authentication.anonymous.enabled", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authentication.Anonymous.Enabled = ptr.To(v.anonymousAuth)
		}},
		{"authentication-token-webhook", "authentication.webhook.enabled", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authentication.Webhook.Enabled = ptr.To(v.authnWebhook)
		}},
		{"authentication-token-webhook-cache-ttl", "authentication.webhook.cacheTTL", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authentication.Webhook.CacheTTL = metav1.Duration{Duration: v.authnWebhookCacheTTL}
		}},
		{"client-ca-file", "authentication.x509.clientCAFile", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authentication.X509.ClientCAFile = v.clientCAFile
		}},
		{"authorization-mode", "authorization.mode", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authorization.Mode = kubeletconfig.KubeletAuthorizationMode(v.authorizationMode)
		}},
		{"authorization-webhook-cache-authorized-ttl", "authorization.webhook.cacheAuthorizedTTL", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authorization.Webhook.CacheAuthorizedTTL = metav1.Duration{Duration: v.authzCacheAuthorizedTTL}
		}},
		{"authorization-webhook-cache-unauthorized-ttl", "authorization.webhook.cacheUnauthorizedTTL", func(c *kubeletconfig.KubeletConfiguration) {
			c.Authorization.Webhook.CacheUnauthorizedTTL = metav1.Duration{Duration: v.authzCacheDeniedTTL}
		}},
		{"rotate-certificates", "rotateCertificates", func(c *kubeletconfig.KubeletConfiguration) { c.RotateCertificates = v.rotateCertificates }},
		{"rotate-server-certificates", "serverTLSBootstrap", func(c *kubeletconfig.KubeletConfiguration) { c.ServerTLSBootstrap = v.rotateServerCertificates }},
		{"enable-debugging-handlers", "enableDebuggingHandlers", func(c *kubeletconfig.KubeletConfiguration) {
			c.EnableDebuggingHandlers = ptr.To(v.enableDebuggingHandlers)
		}},
		{"container-log-max-size", "containerLogMaxSize", func(c *kubeletconfig.KubeletConfiguration) { c.ContainerLogMaxSize = v.containerLogMaxSize }},
		{"container-log-max-files", "containerLogMaxFiles", func(c *kubeletconfig.KubeletConfiguration) { c.ContainerLogMaxFiles = ptr.To(v.containerLogMaxFiles) }},
		{"volume-stats-agg-period", "volumeStatsAggPeriod", func(c *kubeletconfig.KubeletConfiguration) {
			c.VolumeStatsAggPeriod = metav1.Duration{Duration: v.volumeStatsAggPeriod}
		}},
		{"kubelet-cgroups", "kubeletCgroups", func(c *kubeletconfig.KubeletConfiguration) { c.KubeletCgroups = v.kubeletCgroups }},
		{"system-cgroups", "systemCgroups", func(c *kubeletconfig.KubeletConfiguration) { c.SystemCgroups = v.systemCgroups }},
		{"v", "logging.verbosity", func(c *kubeletconfig.KubeletConfiguration) {
			c.Logging.Verbosity = logsapi.VerbosityLevel(v.verbosity)
		}},
	}
}

// applyTo copies the flags the user gave into cfg and returns the JSON
// paths of the fields they set.
func (v *flagValues) applyTo(fs *pflag.FlagSet, cfg *kubeletconfig.KubeletConfiguration) []string {
	var set []string
	for _, f := range v.configFlags() {
		if fs.Changed(f.name) {
			f.apply(cfg)
			set = append(set, f.field)
		}
	}
	return set
}
