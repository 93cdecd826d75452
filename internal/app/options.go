// Package app wires berth's components together from Options and runs them.
// It holds no logic of its own beyond start-up order and shutdown.
package app

import (
	"time"

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

	// Config is the full merged configuration, kept for /configz.
	Config *kubeletconfig.KubeletConfiguration
}
