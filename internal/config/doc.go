// Package config turns berth's command line and its KubeletConfiguration
// file into app.Options.
//
// The file is the upstream one (apiVersion kubelet.config.k8s.io/v1beta1,
// kind KubeletConfiguration, YAML or JSON, the Go types of
// k8s.io/kubelet/config/v1beta1), read strictly: a wrong apiVersion or kind,
// an unknown or misspelt field, a duplicate key or a value of the wrong type
// is an error that names the file and the field's JSON path. Relative paths
// in the file are relative to the file's directory, as upstream.
//
// Precedence is upstream's: flags the user gave > the --config file >
// defaults. The defaults are upstream's (SetDefaults), filled into every
// field so that /configz can show the complete configuration berth runs
// with.
//
// # The read-only port in standalone mode
//
// Upstream disables the unauthenticated read-only port by default
// (readOnlyPort 0) and binds its servers to address, default 0.0.0.0.
// berth differs only when it runs standalone (no --kubeconfig): there is no
// API server to authenticate requests against and the read-only endpoint is
// how one inspects the node, so readOnlyPort defaults to 10255 and address
// to 127.0.0.1, reachable from the node only. Setting readOnlyPort (0
// disables it) or address, in the file or by flag, wins over these
// defaults. With --kubeconfig berth follows upstream: readOnlyPort 0 and
// address 0.0.0.0 unless set. The merged configuration records the values
// actually used.
//
// # Node registration settings
//
// --node-labels is validated as upstream validates it: valid keys and
// values, and in the kubernetes.io and k8s.io namespaces only the labels
// a kubelet may set on its own Node (the NodeRestriction admission plugin
// refuses the others). registerWithTaints must also have an effect and be
// unique by key and effect, which upstream leaves to the API server to
// reject on every registration attempt. kubeReserved and systemReserved
// are parsed into resource lists as upstream does. evictionHard defaults,
// when neither file nor flag sets it, to upstream's Linux thresholds
// (memory.available 100Mi, nodefs.available 10%, nodefs.inodesFree 5%,
// imagefs.available 15%, imagefs.inodesFree 5%), or is completed with them
// under mergeDefaultEvictionSettings; like upstream this happens after
// loading rather than in SetDefaults. berth does not evict yet: the
// memory.available and nodefs.available thresholds are held back from the
// Node's allocatable, as upstream does.
//
// # Fields berth does not act on yet
//
// berth honours only some KubeletConfiguration fields; the list is
// supportedFields in supported.go, extended as features land. Every other
// field the user sets is accepted (so upstream files load unchanged) and
// returned in Result.Unsupported, for the caller to report once at
// start-up. "Set" means written in the file or given as a flag, even if
// equal to the default.
//
// The package does no logging and never exits: Parse returns errors and
// warnings for cmd/berth to report.
package config
