package config

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// flagValues holds what the command line says. Only flags the user gave
// (pflag's Changed) are copied into the configuration, so the defaults
// shown here are for the help text only.
type flagValues struct {
	config           string
	kubeconfig       string
	rootDir          string
	hostnameOverride string
	nodeIP           string
	version          bool

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
}

func newFlagSet(out io.Writer) (*pflag.FlagSet, *flagValues) {
	v := &flagValues{}
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
	fs.StringVar(&v.kubeconfig, "kubeconfig", "", "Path to a kubeconfig file for the API server. Omit it to run standalone. (Accepted; berth does not connect to an API server yet.)")
	fs.StringVar(&v.rootDir, "root-dir", DefaultRootDir, "Directory for berth's files (pod volumes, plugins, state).")
	fs.StringVar(&v.hostnameOverride, "hostname-override", "", "Node name to use instead of the host name.")
	fs.StringVar(&v.nodeIP, "node-ip", "", "IP address of the node. If unset, berth uses the address of the default route.")

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
