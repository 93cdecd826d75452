package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/app"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/nodeshutdown"
	"github.com/berth-dev/berth/internal/nodestatus"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	netutils "k8s.io/utils/net"
	"k8s.io/utils/ptr"
)

// Env is what Parse takes from the host besides the files it is pointed
// at; tests replace it.
type Env struct {
	// Hostname gives the node name when --hostname-override is not set.
	// Nil means os.Hostname.
	Hostname func() (string, error)
	// Output receives the -h usage text and the flag deprecation
	// notices. Nil means io.Discard.
	Output io.Writer
	// SwapOn reports whether swap is on, for failSwapOn. Nil means
	// reading /proc/swaps.
	SwapOn func() (bool, error)
}

// Result is the outcome of a successful Parse.
type Result struct {
	Options app.Options

	// Kubeconfig is --kubeconfig; empty means standalone mode.
	Kubeconfig string
	// Unsupported lists, sorted, the JSON paths of the fields the user set
	// (in the file, a drop-in or by flag) that berth does not act on yet.
	Unsupported []string
	// UnsupportedFlags lists the flags given that are not configuration
	// fields and that berth does not act on yet ("--lock-file").
	UnsupportedFlags []string
	// Warnings are problems that do not stop berth, to be logged once.
	Warnings []Warning
	// Version is true when --version was given; nothing else is filled in.
	Version bool
}

// Standalone reports whether berth runs without an API server.
func (r *Result) Standalone() bool { return r.Kubeconfig == "" }

// Warning is a structured log message: logger.Info(w.Msg, w.KeysAndValues...).
type Warning struct {
	Msg           string
	KeysAndValues []any
}

// UsageError is a malformed command line (unknown flag, bad flag value,
// stray argument), as opposed to a bad configuration.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ErrHelp is returned when -h or --help was given; the usage has been
// written to Env.Output.
var ErrHelp = pflag.ErrHelp

// Parse turns berth's command line into Options, in upstream's order: it
// parses the flags (unknown names and bad values are usage errors), loads
// the --config file and merges the --config-dir drop-ins over it, applies
// the upstream defaults, then the flags again over the result (flags >
// drop-ins > file > defaults), the default eviction thresholds and the
// standalone defaults, and validates the result, refusing settings berth
// cannot honour (refused.go). It does no logging and never exits.
func Parse(args []string, env Env) (*Result, error) {
	out := env.Output
	if out == nil {
		out = io.Discard
	}
	// First pass: the configuration flags go to a scratch configuration;
	// what matters is the kubelet flags (--config, --config-dir, -h, ...)
	// and that every flag parses.
	flags := newKubeletFlags()
	scratch := &kubeletconfig.KubeletConfiguration{}
	SetDefaults(scratch)
	fs, _ := newFlagSet(out, flags, scratch)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, &UsageError{Err: err}
	}
	if flags.help {
		fs.Usage()
		return nil, ErrHelp
	}
	if fs.NArg() > 0 {
		return nil, &UsageError{Err: fmt.Errorf("unexpected argument %q: berth takes only flags", fs.Arg(0))}
	}
	if flags.version != versionFalse {
		return &Result{Version: true}, nil
	}

	cfg := &kubeletconfig.KubeletConfiguration{}
	var set []string
	var warnings []Warning
	if fs.Changed("config") {
		if flags.config == "" {
			return nil, &UsageError{Err: errors.New("--config must not be empty")}
		}
		var err error
		if cfg, set, err = LoadFile(flags.config); err != nil {
			return nil, err
		}
		// Upstream gives evictionHard its default when it loads the file,
		// before the drop-ins and flags.
		applyEvictionDefaults(cfg)
	}
	if flags.configDir != "" {
		SetDefaults(cfg)
		merged, dropInSet, skipped, err := mergeDropIns(cfg, flags.configDir)
		if err != nil {
			return nil, err
		}
		cfg, set = merged, append(set, dropInSet...)
		for _, f := range skipped {
			warnings = append(warnings, Warning{Msg: "Skipped file in drop-in directory (does not have .conf extension)", KeysAndValues: []any{"file", f}})
		}
	}
	SetDefaults(cfg)
	cfg.APIVersion, cfg.Kind = APIVersion, Kind

	// Second pass: the flags again, now onto the configuration, so that
	// they win over the file and the drop-ins. Feature gates the flags do
	// not name keep the file's values, as upstream.
	fileGates := cfg.FeatureGates
	fs2, fieldOf := newFlagSet(io.Discard, newKubeletFlags(), cfg)
	if err := fs2.Parse(args); err != nil {
		return nil, &UsageError{Err: err} // the first pass accepted the same arguments
	}
	for k, v := range fileGates {
		if _, ok := cfg.FeatureGates[k]; !ok {
			cfg.FeatureGates[k] = v
		}
	}
	var unsupportedFlags []string
	fs2.Visit(func(f *pflag.Flag) {
		if field, ok := fieldOf[f.Name]; ok {
			set = append(set, field)
		} else if !isSupportedFlag(f.Name) {
			unsupportedFlags = append(unsupportedFlags, "--"+f.Name)
		}
	})
	// --seccomp-default adds to the field, as upstream ORs the two.
	if flags.seccompDefault {
		cfg.SeccompDefault = ptr.To(true)
		set = append(set, "seccompDefault")
	}
	if !fs.Changed("config") {
		applyEvictionDefaults(cfg)
	}

	res := &Result{Kubeconfig: flags.kubeconfig, Unsupported: unsupported(set), UnsupportedFlags: unsupportedFlags}
	if res.Standalone() {
		applyStandaloneDefaults(cfg, set)
	}

	var errs []error
	if err := validate(cfg); err != nil {
		errs = append(errs, err)
	}
	if res.Standalone() {
		errs = append(errs, validateStandaloneAuth(cfg)...)
	}
	flagOf := map[string]string{"seccompDefault": "seccomp-default"}
	for name, field := range fieldOf {
		flagOf[field] = name
	}
	errs = append(errs, checkRefusals(cfg, flagOf)...)
	gateWarnings, gateErrs := checkFeatureGates(cfg.FeatureGates)
	errs = append(errs, gateErrs...)
	errs = append(errs, validateNodeLabels(flags.nodeLabels)...)
	nodeName, err := nodeName(flags.hostnameOverride, env.Hostname)
	if err != nil {
		errs = append(errs, err)
	}
	if err := validateCloudProvider(flags.cloudProvider); err != nil {
		errs = append(errs, err)
	}
	nodeIP, err := parseNodeIP(flags.nodeIP)
	if err != nil {
		errs = append(errs, err)
	}
	if flags.rootDir == "" {
		errs = append(errs, errors.New("--root-dir must not be empty"))
	}
	if flags.bootstrapKubeconfig != "" && flags.kubeconfig == "" {
		errs = append(errs, errors.New("--bootstrap-kubeconfig needs --kubeconfig: the path the bootstrapped kubeconfig is written to"))
	}
	if cfg.ServerTLSBootstrap && flags.kubeconfig == "" {
		errs = append(errs, errors.New("serverTLSBootstrap (--rotate-server-certificates) needs --kubeconfig: standalone, there is no API server to issue the certificate"))
	}
	if fs.Changed("cert-dir") && flags.certDir == "" {
		errs = append(errs, errors.New("--cert-dir must not be empty"))
	}
	for _, f := range []struct{ name, val string }{
		{"static-pod-security", flags.staticPodSecurity},
		{"pod-security-floor", flags.podSecurityFloor},
	} {
		if f.val == "" {
			continue
		}
		if _, err := admission.ParsePodSecurityLevel(f.val); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.name, err))
		}
	}
	if _, err := image.NewVerifyPolicy(cfg.ImagePullCredentialsVerificationPolicy, cfg.PreloadedImagesVerificationAllowlist); err != nil {
		errs = append(errs, err)
	}
	if flags.nodeAutonomy && flags.kubeconfig == "" {
		errs = append(errs, errors.New("--node-autonomy needs --kubeconfig: standalone, there are no API pods to checkpoint"))
	}
	if flags.nodeAutonomyWait <= 0 {
		errs = append(errs, fmt.Errorf("--node-autonomy-api-wait must be greater than zero, got %v", flags.nodeAutonomyWait))
	}
	if flags.housekeeping <= 0 {
		errs = append(errs, fmt.Errorf("--housekeeping-interval must be greater than zero, got %v", flags.housekeeping))
	}
	if err := checkSwap(cfg, env.SwapOn); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration: %w", joinErrors(errs))
	}

	res.Warnings = append(res.Warnings, warnings...)
	res.Warnings = append(res.Warnings, gateWarnings...)
	res.Warnings = append(res.Warnings, staticPodPathWarnings(cfg.StaticPodPath)...)
	res.Warnings = append(res.Warnings, tlsWarnings(cfg)...)
	flags.nodeIP = nodeIP
	res.Options = options(cfg, nodeName, flags)
	if res.Options.Configz, err = InForce(cfg); err != nil {
		return nil, err
	}
	return res, nil
}

// applyStandaloneDefaults serves the read-only endpoint and the kubelet API
// on localhost when there is no API server, and turns off the webhooks,
// unless the user chose otherwise; see the package documentation. set holds
// the JSON paths the user set.
func applyStandaloneDefaults(cfg *kubeletconfig.KubeletConfiguration, set []string) {
	if !slices.Contains(set, "readOnlyPort") {
		cfg.ReadOnlyPort = StandaloneReadOnlyPort
	}
	if !slices.Contains(set, "address") {
		cfg.Address = StandaloneReadOnlyAddress
	}
	applyStandaloneAuthDefaults(cfg, set)
}

// nodeName is --hostname-override or else the host name, trimmed and
// lower-cased as upstream does.
func nodeName(override string, hostname func() (string, error)) (string, error) {
	name := override
	if name == "" {
		if hostname == nil {
			hostname = os.Hostname
		}
		h, err := hostname()
		if err != nil {
			return "", fmt.Errorf("node name: get host name: %w", err)
		}
		name = h
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return "", errors.New("node name is empty; set --hostname-override")
	}
	// Static pods are named <pod>-<node>, so the node name has to be a
	// valid object name.
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", fmt.Errorf("node name %q (--hostname-override or host name) is not a valid DNS subdomain: %s", name, strings.Join(msgs, ", "))
	}
	return name, nil
}

// parseNodeIP checks --node-ip as upstream's ParseNodeIPArgument does: one
// address, or a dual-stack pair (one IPv4, one IPv6, neither unspecified),
// comma-separated. Upstream ignores an entry it cannot parse, with a log
// line; berth refuses it. It returns the addresses, comma-separated, in
// their canonical form.
func parseNodeIP(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	var ips []net.IP
	for _, part := range strings.Split(s, ",") {
		ip := netutils.ParseIPSloppy(strings.TrimSpace(part))
		if ip == nil {
			return "", fmt.Errorf("--node-ip %q: %q is not an IP address", s, strings.TrimSpace(part))
		}
		ips = append(ips, ip)
	}
	switch {
	case len(ips) > 2 || (len(ips) == 2 && netutils.IsIPv6(ips[0]) == netutils.IsIPv6(ips[1])):
		return "", fmt.Errorf("--node-ip %q: must contain either a single IP or a dual-stack pair of IPs", s)
	case len(ips) == 2 && (ips[0].IsUnspecified() || ips[1].IsUnspecified()):
		return "", fmt.Errorf("--node-ip %q: dual-stack node IP cannot include '0.0.0.0' or '::'", s)
	}
	if len(ips) == 1 && ips[0].IsUnspecified() {
		// Upstream's way of asking for the default address (of that
		// family): berth detects the address as without --node-ip.
		return "", nil
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return strings.Join(out, ","), nil
}

// CloudProviderExternal is the one --cloud-provider value besides "":
// upstream has no built-in providers left.
const CloudProviderExternal = "external"

// validateCloudProvider refuses a built-in cloud provider, with upstream's
// advice.
func validateCloudProvider(p string) error {
	if p == "" || p == CloudProviderExternal {
		return nil
	}
	return fmt.Errorf("--cloud-provider %q: built-in cloud providers are disabled; set --cloud-provider=external and migrate to an external cloud provider", p)
}

// staticPodPathWarnings flags a static pod path that is not there yet. That
// is not an error: as upstream, the file source waits for it to appear.
func staticPodPathWarnings(path string) []Warning {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []Warning{{
			Msg:           "Warning: staticPodPath does not exist yet; static pods start when it appears",
			KeysAndValues: []any{"staticPodPath", path},
		}}
	case err != nil:
		return []Warning{{
			Msg:           "Warning: cannot read staticPodPath",
			KeysAndValues: []any{"staticPodPath", path, "err", err},
		}}
	case !fi.IsDir():
		return []Warning{{
			Msg:           "Warning: staticPodPath is not a directory; it is read as a single manifest file",
			KeysAndValues: []any{"staticPodPath", path},
		}}
	}
	return nil
}

// options builds app.Options from the merged, validated configuration.
func options(cfg *kubeletconfig.KubeletConfiguration, nodeName string, flags *kubeletFlags) app.Options {
	// Paths go to the runtime (bind-mount sources, log directories), which
	// resolves relative ones against its own directories, not berth's.
	flags.rootDir = absPath(flags.rootDir)
	cfg.PodLogsDir = absPath(cfg.PodLogsDir)
	cfg.StaticPodPath = absPath(cfg.StaticPodPath)
	flags.certDir = absPath(flags.certDir)
	flags.kubeconfig = absPath(flags.kubeconfig)
	flags.bootstrapKubeconfig = absPath(flags.bootstrapKubeconfig)
	imageEndpoint := cfg.ImageServiceEndpoint
	if imageEndpoint == "" {
		imageEndpoint = cfg.ContainerRuntimeEndpoint
	}
	// One pull at a time when serialized; otherwise maxParallelImagePulls,
	// where nil (0 here) means no limit.
	maxPulls := 1
	if cfg.SerializeImagePulls != nil && !*cfg.SerializeImagePulls {
		maxPulls = 0
		if cfg.MaxParallelImagePulls != nil {
			maxPulls = int(*cfg.MaxParallelImagePulls)
		}
	}
	resolvConf := ""
	if cfg.ResolverConfig != nil {
		resolvConf = *cfg.ResolverConfig
	}
	var kubeAPIQPS int32
	if cfg.KubeAPIQPS != nil {
		kubeAPIQPS = *cfg.KubeAPIQPS
	}
	var nodeLabels map[string]string
	if len(flags.nodeLabels) > 0 {
		nodeLabels = maps.Clone(flags.nodeLabels)
	}
	// Both were validated: errors cannot happen here.
	kubeReserved, _ := parseResourceList("kubeReserved", cfg.KubeReserved)
	systemReserved, _ := parseResourceList("systemReserved", cfg.SystemReserved)
	logMaxSize, _ := parseLogMaxSize(cfg.ContainerLogMaxSize)
	certDir := flags.certDir
	if certDir == "" {
		certDir = filepath.Join(flags.rootDir, "pki")
	}
	return app.Options{
		NodeName:              nodeName,
		NodeIP:                flags.nodeIP,
		RootDir:               flags.rootDir,
		PodLogsDir:            cfg.PodLogsDir,
		StaticPodPath:         cfg.StaticPodPath,
		FileCheckFrequency:    cfg.FileCheckFrequency.Duration,
		StaticPodURL:          cfg.StaticPodURL,
		StaticPodURLHeader:    urlHeader(cfg.StaticPodURLHeader),
		HTTPCheckFrequency:    cfg.HTTPCheckFrequency.Duration,
		SyncFrequency:         cfg.SyncFrequency.Duration,
		RuntimeEndpoint:       cfg.ContainerRuntimeEndpoint,
		ImageEndpoint:         imageEndpoint,
		RuntimeRequestTimeout: cfg.RuntimeRequestTimeout.Duration,
		CgroupDriver:          cfg.CgroupDriver,
		MaxParallelImagePulls: maxPulls,
		ClusterDNS:            slices.Clone(cfg.ClusterDNS),
		ClusterDomain:         cfg.ClusterDomain,
		ResolvConf:            resolvConf,
		ReadOnlyAddress:       cfg.Address,
		ReadOnlyPort:          cfg.ReadOnlyPort,

		Address:            cfg.Address,
		HealthzBindAddress: cfg.HealthzBindAddress,
		HealthzPort:        ptr.Deref(cfg.HealthzPort, 0),
		TLSCertFile:        cfg.TLSCertFile,
		TLSPrivateKeyFile:  cfg.TLSPrivateKeyFile,
		TLSMinVersion:      cfg.TLSMinVersion,
		TLSCipherSuites:    slices.Clone(cfg.TLSCipherSuites),
		CertDir:            certDir,
		Authentication:     *cfg.Authentication.DeepCopy(),
		Authorization:      *cfg.Authorization.DeepCopy(),

		EnableDebuggingHandlers: ptr.Deref(cfg.EnableDebuggingHandlers, false),
		EnableSystemLogHandler:  ptr.Deref(cfg.EnableSystemLogHandler, false),
		EnableProfilingHandler:  ptr.Deref(cfg.EnableProfilingHandler, false),

		ContainerLogMaxSize:         logMaxSize,
		ContainerLogMaxFiles:        int(ptr.Deref(cfg.ContainerLogMaxFiles, 0)),
		ContainerLogMaxWorkers:      int(ptr.Deref(cfg.ContainerLogMaxWorkers, 0)),
		ContainerLogMonitorInterval: cfg.ContainerLogMonitorInterval.Duration,

		HousekeepingInterval:          flags.housekeeping,
		MinimumContainerTTL:           flags.minimumGCAge,
		MaxDeadContainersPerContainer: int(flags.maxPerPodContainerCount),
		VolumeStatsAggPeriod:          cfg.VolumeStatsAggPeriod.Duration,
		KubeletCgroups:                cfg.KubeletCgroups,
		SystemCgroups:                 cfg.SystemCgroups,

		Kubeconfig:          flags.kubeconfig,
		BootstrapKubeconfig: flags.bootstrapKubeconfig,
		RotateCertificates:  cfg.RotateCertificates,
		ServerTLSBootstrap:  cfg.ServerTLSBootstrap,
		KubeAPIQPS:          float32(kubeAPIQPS),
		KubeAPIBurst:        int(cfg.KubeAPIBurst),
		EventRecordQPS:      float32(ptr.Deref(cfg.EventRecordQPS, 0)),
		EventBurst:          int(cfg.EventBurst),

		NodeLabels:                nodeLabels,
		ExternalCloudProvider:     flags.cloudProvider == CloudProviderExternal,
		ProviderID:                cfg.ProviderID,
		RegisterWithTaints:        slices.Clone(cfg.RegisterWithTaints),
		AllowedUnsafeSysctls:      slices.Clone(cfg.AllowedUnsafeSysctls),
		StaticPodSecurity:         flags.staticPodSecurity,
		PodSecurityFloor:          flags.podSecurityFloor,
		NodeAutonomy:              flags.nodeAutonomy,
		NodeAutonomyWait:          nodeAutonomyWait(flags),
		SeccompDefault:            ptr.Deref(cfg.SeccompDefault, false),
		ProtectKernelDefaults:     cfg.ProtectKernelDefaults,
		UserNamespacesIDsPerPod:   idsPerPod(cfg),
		MaxPods:                   int(cfg.MaxPods),
		KubeReserved:              kubeReserved,
		SystemReserved:            systemReserved,
		EvictionHard:              maps.Clone(cfg.EvictionHard),
		NodeStatusUpdateFrequency: cfg.NodeStatusUpdateFrequency.Duration,
		NodeStatusReportFrequency: cfg.NodeStatusReportFrequency.Duration,
		NodeLeaseDurationSeconds:  cfg.NodeLeaseDurationSeconds,
		Port:                      cfg.Port,

		ImagePullCredentialsVerificationPolicy: string(cfg.ImagePullCredentialsVerificationPolicy),
		PreloadedImagesVerificationAllowlist:   slices.Clone(cfg.PreloadedImagesVerificationAllowlist),

		ImageCredentialProviderConfig:               absPath(flags.imageCredentialProviderConfig),
		ImageCredentialProviderBinDir:               absPath(flags.imageCredentialProviderBinDir),
		ImageCredentialProviderServiceAccountTokens: featureEnabled(cfg.FeatureGates, "KubeletServiceAccountTokenForCredentialProviders"),
		DeclaredFeatures:                            nodestatus.DeclaredFeatures(func(gate string) bool { return featureEnabled(cfg.FeatureGates, gate) }),

		ShutdownGracePeriods: shutdownPeriods(cfg),

		Cgroups: cgroupOptions(cfg),

		Config: cfg,
	}
}

// absPath makes p absolute against the working directory; "" stays "".
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// idsPerPod is userNamespaces.idsPerPod, upstream's 65536 when unset
// (validate checks the value).
func idsPerPod(cfg *kubeletconfig.KubeletConfiguration) uint32 {
	if cfg.UserNamespaces == nil || cfg.UserNamespaces.IDsPerPod == nil {
		return 65536
	}
	return uint32(*cfg.UserNamespaces.IDsPerPod)
}

// nodeAutonomyWait is --node-autonomy-api-wait when node autonomy is on;
// without it the wait means nothing.
func nodeAutonomyWait(f *kubeletFlags) time.Duration {
	if !f.nodeAutonomy {
		return 0
	}
	return f.nodeAutonomyWait
}

// urlHeader is staticPodURLHeader as the request header, as upstream
// builds it; nil when none is set.
func urlHeader(h map[string][]string) http.Header {
	if len(h) == 0 {
		return nil
	}
	out := http.Header{}
	for k, vs := range h {
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	return out
}

// shutdownPeriods are graceful node shutdown's budgets by priority
// (upstream's migration of shutdownGracePeriod and
// shutdownGracePeriodCriticalPods when no list is given); none when the
// GracefulNodeShutdown gate is off.
func shutdownPeriods(cfg *kubeletconfig.KubeletConfiguration) []kubeletconfig.ShutdownGracePeriodByPodPriority {
	if !featureEnabled(cfg.FeatureGates, "GracefulNodeShutdown") {
		return nil
	}
	byPriority := cfg.ShutdownGracePeriodByPodPriority
	if !featureEnabled(cfg.FeatureGates, "GracefulNodeShutdownBasedOnPodPriority") {
		byPriority = nil
	}
	return nodeshutdown.Periods(cfg.ShutdownGracePeriod.Duration, cfg.ShutdownGracePeriodCriticalPods.Duration, byPriority)
}
