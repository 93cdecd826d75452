// Package app wires berth's components together from Options and runs them.
// It holds no logic of its own beyond start-up order and shutdown.
package app

import (
	"time"

	v1 "k8s.io/api/core/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// Options is everything berth needs to start, after the KubeletConfiguration
// file and the command-line flags have been merged, defaulted and validated
// (see internal/config).
type Options struct {
	NodeName string
	NodeIP   string // may be empty: berth then uses the address of the default route

	RootDir    string // --root-dir, default /var/lib/kubelet
	PodLogsDir string // podLogsDir, default /var/log/pods

	StaticPodPath      string        // staticPodPath / --pod-manifest-path; empty disables the file source
	FileCheckFrequency time.Duration // fileCheckFrequency: periodic rescan of StaticPodPath
	SyncFrequency      time.Duration // syncFrequency: periodic resync of every pod

	RuntimeEndpoint       string        // containerRuntimeEndpoint
	ImageEndpoint         string        // imageServiceEndpoint, defaults to RuntimeEndpoint
	RuntimeRequestTimeout time.Duration // runtimeRequestTimeout
	CgroupDriver          string        // cgroupDriver: cgroupfs or systemd

	MaxParallelImagePulls int // 1 when serializeImagePulls is true

	ClusterDNS    []string
	ClusterDomain string
	ResolvConf    string // resolvConf, "" disables host DNS inheritance

	ReadOnlyAddress string // address for the read-only port (127.0.0.1 in standalone mode)
	ReadOnlyPort    int32  // readOnlyPort; 0 disables it

	// Kubeconfig is the path of the kubeconfig for the API server; empty
	// means standalone (static pods only, no node object).
	Kubeconfig   string
	KubeAPIQPS   float32 // kubeAPIQPS
	KubeAPIBurst int     // kubeAPIBurst

	// Node registration and status (used only with Kubeconfig).
	NodeLabels                map[string]string // --node-labels
	RegisterWithTaints        []v1.Taint        // registerWithTaints
	MaxPods                   int               // maxPods
	KubeReserved              v1.ResourceList   // kubeReserved
	SystemReserved            v1.ResourceList   // systemReserved
	EvictionHard              map[string]string // evictionHard, e.g. memory.available: 100Mi
	NodeStatusUpdateFrequency time.Duration     // nodeStatusUpdateFrequency (10 s)
	NodeStatusReportFrequency time.Duration     // nodeStatusReportFrequency (5 min)
	NodeLeaseDurationSeconds  int32             // nodeLeaseDurationSeconds (40)
	Port                      int32             // port: the kubelet API port reported in the Node's daemonEndpoints

	// Config is the full merged configuration, kept for /configz.
	Config *kubeletconfig.KubeletConfiguration
}
