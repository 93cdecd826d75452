package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/app"
	"github.com/berth-dev/berth/internal/image"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// Env is what Parse takes from the host besides the files it is pointed
// at; tests replace it.
type Env struct {
	// Hostname gives the node name when --hostname-override is not set.
	// Nil means os.Hostname.
	Hostname func() (string, error)
	// Output receives the -h usage text. Nil means io.Discard.
	Output io.Writer
}

// Result is the outcome of a successful Parse.
type Result struct {
	Options app.Options

	// Kubeconfig is --kubeconfig; empty means standalone mode.
	Kubeconfig string
	// Unsupported lists, sorted, the JSON paths of the fields the user set
	// (in the file or by flag) that berth does not act on yet.
	Unsupported []string
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

// Parse turns berth's command line into Options: it loads the --config
// file, applies the upstream defaults, then the flags the user gave
// (flags > file > defaults), the default eviction thresholds, the
// standalone read-only port default, and validates the result. It does no logging and never exits.
func Parse(args []string, env Env) (*Result, error) {
	out := env.Output
	if out == nil {
		out = io.Discard
	}
	fs, flags := newFlagSet(out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, &UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		return nil, &UsageError{Err: fmt.Errorf("unexpected argument %q: berth takes only flags", fs.Arg(0))}
	}
	if flags.version {
		return &Result{Version: true}, nil
	}

	cfg := &kubeletconfig.KubeletConfiguration{}
	var set []string
	if fs.Changed("config") {
		if flags.config == "" {
			return nil, &UsageError{Err: errors.New("--config must not be empty")}
		}
		var err error
		if cfg, set, err = LoadFile(flags.config); err != nil {
			return nil, err
		}
	}
	SetDefaults(cfg)
	cfg.APIVersion, cfg.Kind = APIVersion, Kind
	set = append(set, flags.applyTo(fs, cfg)...)

	applyEvictionDefaults(cfg)

	res := &Result{Kubeconfig: flags.kubeconfig, Unsupported: unsupported(set)}
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
	errs = append(errs, validateNodeLabels(flags.nodeLabels)...)
	nodeName, err := nodeName(flags.hostnameOverride, env.Hostname)
	if err != nil {
		errs = append(errs, err)
	}
	if err := validateNodeIP(flags.nodeIP); err != nil {
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
	if flags.housekeeping <= 0 {
		errs = append(errs, fmt.Errorf("--housekeeping-interval must be greater than zero, got %v", flags.housekeeping))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration: %w", joinErrors(errs))
	}

	res.Warnings = append(res.Warnings, staticPodPathWarnings(cfg.StaticPodPath)...)
	res.Warnings = append(res.Warnings, tlsWarnings(cfg)...)
	res.Options = options(cfg, nodeName, flags)
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

// validateNodeIP accepts one IP address. Upstream also takes a dual-stack
// pair; berth does not yet.
func validateNodeIP(ip string) error {
	if ip == "" {
		return nil
	}
	if strings.Contains(ip, ",") {
		return fmt.Errorf("--node-ip %q: dual-stack node IPs are not supported yet, give one address", ip)
	}
	if net.ParseIP(ip) == nil {
		return fmt.Errorf("--node-ip %q is not an IP address", ip)
	}
	return nil
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
func options(cfg *kubeletconfig.KubeletConfiguration, nodeName string, flags *flagValues) app.Options {
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

		HousekeepingInterval: flags.housekeeping,
		VolumeStatsAggPeriod: cfg.VolumeStatsAggPeriod.Duration,
		KubeletCgroups:       cfg.KubeletCgroups,
		SystemCgroups:        cfg.SystemCgroups,

		Kubeconfig:          flags.kubeconfig,
		BootstrapKubeconfig: flags.bootstrapKubeconfig,
		RotateCertificates:  cfg.RotateCertificates,
		ServerTLSBootstrap:  cfg.ServerTLSBootstrap,
		KubeAPIQPS:          float32(kubeAPIQPS),
		KubeAPIBurst:        int(cfg.KubeAPIBurst),
		EventRecordQPS:      float32(ptr.Deref(cfg.EventRecordQPS, 0)),
		EventBurst:          int(cfg.EventBurst),

		NodeLabels:                nodeLabels,
		RegisterWithTaints:        slices.Clone(cfg.RegisterWithTaints),
		AllowedUnsafeSysctls:      slices.Clone(cfg.AllowedUnsafeSysctls),
		StaticPodSecurity:         flags.staticPodSecurity,
		PodSecurityFloor:          flags.podSecurityFloor,
		SeccompDefault:            ptr.Deref(cfg.SeccompDefault, false),
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
