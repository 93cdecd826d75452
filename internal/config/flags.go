package config

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// berth accepts every flag the upstream kubelet v1.37 defines, with the
// same names, types and deprecations (cluster/compare checks the two sets
// are equal). They come in three groups, as upstream's:
//
//   - kubelet flags (kubeletFlags), which are not part of
//     KubeletConfiguration: --config, --kubeconfig, --node-ip, ...;
//   - configuration flags (configflags.go), each bound to one field of the
//     KubeletConfiguration and deprecated in favour of the file;
//   - global flags of the libraries upstream links: cAdvisor's
//     --housekeeping-interval, --version and the logging flags.
//
// A flag berth does not act on is accepted and reported once at start-up
// (supported.go lists what berth acts on); a setting whose being ignored
// would weaken security or resource protection is refused (refused.go).

// kubeletFlags holds the flags that are not KubeletConfiguration fields.
type kubeletFlags struct {
	config              string
	configDir           string
	kubeconfig          string
	bootstrapKubeconfig string
	hostnameOverride    string
	nodeIP              string
	certDir             string
	cloudProvider       string
	rootDir             string
	seccompDefault      bool
	nodeLabels          map[string]string

	lockFile             string
	exitOnLockContention bool

	// Deprecated upstream, kept for compatibility.
	minimumGCAge                          time.Duration
	maxPerPodContainerCount               int32
	maxContainerCount                     int32
	experimentalMounterPath               string
	experimentalAllocatableIgnoreEviction bool

	runtimeCgroups                string
	imageCredentialProviderConfig string
	imageCredentialProviderBinDir string

	// berth's own settings, which upstream's kubelet does not have.
	staticPodSecurity string
	podSecurityFloor  string
	nodeAutonomy      bool
	nodeAutonomyWait  time.Duration

	// Global flags.
	housekeeping time.Duration
	version      versionValue
	help         bool
}

// newFlagSet registers every flag: the kubelet flags into kf, the
// configuration flags onto cfg, which must be defaulted (SetDefaults), so
// that every pointer a flag writes through is set. It returns, for each
// configuration flag, the JSON path of its field.
func newFlagSet(out io.Writer, kf *kubeletFlags, cfg *kubeletconfig.KubeletConfiguration) (*pflag.FlagSet, map[string]string) {
	fs := pflag.NewFlagSet("berth", pflag.ContinueOnError)
	fs.SetOutput(out)
	// As upstream: --node_ip is --node-ip.
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc)
	fs.SortFlags = true
	addKubeletFlags(fs, kf)
	fields := addConfigFlags(fs, cfg)
	addGlobalFlags(fs, kf)
	fs.BoolVarP(&kf.help, "help", "h", false, "Print this help and exit.")
	annotateUsage(fs, fields)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: berth [flags]\n\n"+
			"berth is a kubelet: it runs the pods of one node on a CRI container runtime.\n"+
			"It accepts every flag of the upstream kubelet; flags override the --config file\n"+
			"and the --config-dir drop-ins, which override the built-in defaults.\n\n"+
			"Flags:\n%s", fs.FlagUsagesWrapped(100))
	}
	return fs, fields
}

// FlagSet returns berth's command line: every flag it accepts, with its
// type and default, for tools that document or compare it. Parse builds
// its own.
func FlagSet() *pflag.FlagSet {
	cfg := &kubeletconfig.KubeletConfiguration{}
	SetDefaults(cfg)
	fs, _ := newFlagSet(io.Discard, newKubeletFlags(), cfg)
	return fs
}

func newKubeletFlags() *kubeletFlags {
	return &kubeletFlags{
		rootDir:                 DefaultRootDir,
		nodeLabels:              map[string]string{},
		housekeeping:            DefaultHousekeepingInterval,
		maxPerPodContainerCount: 1,
		maxContainerCount:       -1,
		version:                 versionFalse,
	}
}

// addKubeletFlags registers the flags that are not KubeletConfiguration
// fields (upstream's KubeletFlags).
func addKubeletFlags(fs *pflag.FlagSet, f *kubeletFlags) {
	fs.StringVar(&f.config, "config", "", "Path to a KubeletConfiguration file (kubelet.config.k8s.io/v1beta1, YAML or JSON), relative to the working directory. Flags override values from this file.")
	fs.StringVar(&f.configDir, "config-dir", "", "Directory of drop-in KubeletConfiguration files ending in .conf, also in subdirectories, merged in lexical order of their paths over --config (JSON merge patch); other files are ignored. Flags override them.")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig file for the API server. Omit it to run standalone (static pods only, no Node object).")
	fs.StringVar(&f.bootstrapKubeconfig, "bootstrap-kubeconfig", "", "Path to a kubeconfig used to request a client certificate when --kubeconfig does not exist; the certificate goes to --cert-dir and a kubeconfig using it to --kubeconfig.")
	fs.StringVar(&f.hostnameOverride, "hostname-override", "", "Node name to use instead of the host name.")
	fs.StringVar(&f.nodeIP, "node-ip", "", "IP address of the node, or a dual-stack pair (IPv4,IPv6 in either order). If unset, berth uses the address of the default route.")
	fs.StringVar(&f.certDir, "cert-dir", "", "Directory of the TLS certificates and keys: the kubelet API's when --tls-cert-file and --tls-private-key-file are not given (default <root-dir>/pki).")
	fs.StringVar(&f.cloudProvider, "cloud-provider", "", `Cloud provider: empty for none, or "external" for one that runs outside the kubelet; the node then registers with the taint node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule until that provider initialises it.`)
	fs.StringVar(&f.rootDir, "root-dir", DefaultRootDir, "Directory for berth's files (pod volumes, plugins, state).")
	fs.BoolVar(&f.seccompDefault, "seccomp-default", false, "Run every container without a seccomp profile under RuntimeDefault (the same as seccompDefault: true).")
	nodeLabels := cliflag.ConfigurationMap(f.nodeLabels)
	fs.Var(&nodeLabels, "node-labels", "Labels to add when registering the node, key=value pairs separated by ','. Labels in the kubernetes.io and k8s.io namespaces must be ones a kubelet may set: "+kubeletLabelsHelp()+".")
	fs.StringVar(&f.lockFile, "lock-file", "", "Path of a lock file the kubelet holds while it runs.")
	fs.BoolVar(&f.exitOnLockContention, "exit-on-lock-contention", false, "Exit when another process wants the --lock-file.")

	fs.DurationVar(&f.minimumGCAge, "minimum-container-ttl-duration", 0, "Minimum age of a finished container before it may be garbage collected.")
	fs.Int32Var(&f.maxPerPodContainerCount, "maximum-dead-containers-per-container", 1, "Number of old instances to keep per container.")
	fs.Int32Var(&f.maxContainerCount, "maximum-dead-containers", -1, "Number of old container instances to keep on the node; negative for no limit.")
	gcDeprecated := "Use --eviction-hard or --eviction-soft instead. Will be removed in a future version."
	for _, name := range []string{"minimum-container-ttl-duration", "maximum-dead-containers-per-container", "maximum-dead-containers"} {
		deprecate(fs, name, gcDeprecated)
	}
	fs.StringVar(&f.experimentalMounterPath, "experimental-mounter-path", "", "Path of the mount binary; empty for the default.")
	deprecate(fs, "experimental-mounter-path", "will be removed in 1.25 or later. in favor of using CSI.")
	fs.BoolVar(&f.experimentalAllocatableIgnoreEviction, "experimental-allocatable-ignore-eviction", false, "Do not hold the hard eviction thresholds back from the node's allocatable.")
	deprecate(fs, "experimental-allocatable-ignore-eviction", "will be removed in 1.25 or later.")

	fs.StringVar(&f.runtimeCgroups, "runtime-cgroups", "", "Absolute name of a cgroup to create and move the container runtime into.")
	fs.StringVar(&f.imageCredentialProviderConfig, "image-credential-provider-config", "", "Path of a credential provider plugin configuration file, or a directory of them.")
	fs.StringVar(&f.imageCredentialProviderBinDir, "image-credential-provider-bin-dir", "", "Directory of the credential provider plugin binaries.")

	// berth's own flags (BerthFlags): settings upstream's kubelet does not have.
	fs.StringVar(&f.staticPodSecurity, "static-pod-security", "", `Pod Security Standard static pods must meet, "<level>[:<version>]" (privileged, baseline or restricted; version "latest" or "v1.<minor>", default latest), checked as PodSecurity admission would. A refused manifest does not run; an earlier version of it keeps running. Empty checks nothing. [berth's own flag]`)
	fs.StringVar(&f.podSecurityFloor, "pod-security-floor", "", `Pod Security Standard every pod from the API server must also meet at this node, "<level>[:<version>]"; a pod that does not is rejected at admission. Empty checks nothing. [berth's own flag]`)
	fs.BoolVar(&f.nodeAutonomy, "node-autonomy", false, `Checkpoint the API pods bound to this node, with the ConfigMaps, Secrets (encrypted) and service-account tokens they use, under <root-dir>/autonomy, and run them from there when berth starts while the API server cannot be reached. Off removes any checkpoint. [berth's own flag]`)
	fs.DurationVar(&f.nodeAutonomyWait, "node-autonomy-api-wait", 10*time.Second, `With --node-autonomy: how long berth waits at start-up for the API server to list the node's pods before it runs the checkpointed ones. [berth's own flag]`)
}

// BerthFlags are the flags berth has beyond upstream's: its own settings,
// documented in docs/architecture.md. Every other flag is upstream's.
func BerthFlags() []string {
	return []string{"static-pod-security", "pod-security-floor", "node-autonomy", "node-autonomy-api-wait"}
}

// addGlobalFlags registers the flags upstream takes from the libraries it
// links: cAdvisor's housekeeping interval and --version. The logging flags
// are configuration flags (logging.*), registered by addConfigFlags.
func addGlobalFlags(fs *pflag.FlagSet, f *kubeletFlags) {
	fs.DurationVar(&f.housekeeping, "housekeeping-interval", DefaultHousekeepingInterval, "Time between two collections of container stats.")
	fs.Var(&f.version, "version", "Print the version and exit (--version or --version=raw).")
	fs.Lookup("version").NoOptDefVal = string(versionTrue)
}

// deprecate marks a flag deprecated and keeps it in the help, as upstream.
func deprecate(fs *pflag.FlagSet, name, msg string) {
	f := fs.Lookup(name)
	f.Deprecated = msg
	f.Hidden = false
}

// annotateUsage tells, in the help, which flags berth does not act on:
// a configuration flag by its field, a kubelet flag by its name.
func annotateUsage(fs *pflag.FlagSet, fields map[string]string) {
	refused := map[string]bool{}
	for _, r := range refusals() {
		refused[r.field] = true
	}
	fs.VisitAll(func(f *pflag.Flag) {
		field, isConfig := fields[f.Name]
		switch {
		case isConfig && refused[field]:
			f.Usage += " [berth: refused unless left at its default]"
		case isConfig && !isSupported(field):
			f.Usage += " [berth: accepted and ignored, with a warning]"
		case !isConfig && !isSupportedFlag(f.Name):
			f.Usage += " [berth: accepted and ignored, with a warning]"
		}
		f.Usage = strings.TrimSpace(f.Usage)
	})
}
