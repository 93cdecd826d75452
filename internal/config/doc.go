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
// # The kubelet API in standalone mode
//
// Upstream authenticates requests to port (10250) by client certificate
// (authentication.x509.clientCAFile) and by bearer tokens the API server
// reviews (authentication.webhook, on by default), and authorizes them by
// asking the API server (authorization.mode Webhook, the default).
// Standalone there is no API server to ask, so unless the user set them
// berth turns the token webhook off and uses authorization mode
// AlwaysAllow. Anonymous requests stay off, as upstream, so only clients
// presenting a certificate signed by clientCAFile (--client-ca-file) get
// in; without clientCAFile nobody does. Asking for the token webhook or
// Webhook authorization without --kubeconfig is an error (upstream fails
// when it starts its server); enabling anonymous requests as well lets
// anyone who can reach the port in. The port listens on address, so
// standalone it too is on 127.0.0.1 unless address is set. The merged
// configuration records the values actually used.
//
// Without tlsCertFile and tlsPrivateKeyFile (given together or not at
// all) the serving pair is kubelet.crt and kubelet.key in --cert-dir,
// self-signed if missing, as upstream. --cert-dir defaults to
// <root-dir>/pki; upstream's default is /var/lib/kubelet/pki whatever
// --root-dir says, which is the same with the default root directory.
//
// # Container logs and stats
//
// containerLogMaxSize is parsed into bytes as upstream's log manager
// parses it, when loading rather than when starting: a negative size
// disables rotation, as upstream; zero, which upstream accepts and which
// rotates every non-empty log at each check, is refused.
// --housekeeping-interval, how often container stats are collected, is
// cAdvisor's flag upstream (default 10s) and has no field in the file.
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
