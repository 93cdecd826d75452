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
// Precedence is upstream's: flags the user gave > the --config-dir
// drop-ins > the --config file > defaults. The defaults are upstream's
// (SetDefaults), filled into every field.
//
// # Flags
//
// berth accepts every flag of the upstream kubelet v1.37.2, with the same
// names (underscores read as dashes), shorthands, value types and
// deprecations (cluster/compare/kubeletflags checks the set against
// upstream's); a name upstream does not know is an error. As upstream,
// the flags are parsed twice: once to find --config and --config-dir and
// to reject bad flags, then again onto the loaded configuration so that
// they win over it. Feature gates the flags do not name keep the file's
// values. --seccomp-default adds to seccompDefault, as upstream ORs them.
//
// The logging section and its flags (--logging-format text or json, -v,
// --vmodule, --log-flush-frequency, the split-stream options) are applied
// by cmd/berth with component-base's logsapi, as upstream's kubelet does.
//
// --config-dir merges the .conf files of a directory and its
// subdirectories, in the order filepath.WalkDir visits them, over the
// defaulted --config file, each as a JSON merge patch (RFC 7386), as
// upstream does: objects merge key by key, lists replace, null brings the
// default back. berth reads each drop-in as strictly as --config (upstream
// silently drops unknown fields of a drop-in). Other files are skipped with
// a warning.
//
// --feature-gates and featureGates are checked against upstream's gates at
// v1.37 (featuregates_list.go): an unknown name, or a locked gate set to
// anything but its default, is an error with upstream's message; setting a
// GA or deprecated gate is a warning. berth acts on no gate (the field is
// reported as not acted on) and does not check dependencies between gates.
//
// --node-ip takes one address or a dual-stack pair, validated as upstream
// does (one IPv4 and one IPv6, neither unspecified); upstream ignores an
// entry it cannot parse, berth refuses it. A single "0.0.0.0" or "::"
// means "detect", as without the flag. --cloud-provider is "" or
// "external" (upstream has no built-in providers left); external registers
// the Node with the node.cloudprovider.kubernetes.io/uninitialized taint,
// annotates it with the node IP (alpha.kubernetes.io/provided-node-ip), and
// leaves its addresses to the provider once it has set some.
// --provider-id (providerID) sets spec.providerID at registration.
// failSwapOn (default true) refuses to start when /proc/swaps lists swap.
//
// # Settings berth cannot honour yet
//
// Three outcomes for a field or flag the user sets, and no fourth:
//
//   - berth acts on it (supportedFields and supportedFlags in supported.go);
//   - it weakens nothing when ignored: it is accepted and reported once at
//     start-up as not acted on (Result.Unsupported, Result.UnsupportedFlags);
//   - it asks for security or resource protection berth does not give:
//     a value other than the upstream default (or another value berth
//     honours) is refused at start-up with an error naming the field and
//     its flag. refused.go holds the one table; a feature that enforces a
//     setting removes its line and adds the field to supported.go.
//
// The defaults themselves are never refused, even where berth does not
// enforce what they ask for: refusing
// them would refuse every configuration. Settings that weaken nothing when
// ignored, or make berth only stricter (localStorageCapacityIsolation
// false, failCgroupV1, hairpinMode), are reported, not refused.
//
// # /configz
//
// /configz shows the configuration in force: the merged configuration with
// only the fields berth acts on (InForce). A field berth ignores is left
// out rather than shown with a value that is not in force. Upstream shows
// every field.
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
// field the user sets is accepted (so upstream files load unchanged),
// unless refused (above), and returned in Result.Unsupported, for the
// caller to report once at start-up. "Set" means written in the file or a
// drop-in, or given as a flag, even if equal to the default.
//
// The package does no logging and never exits: Parse returns errors and
// warnings for cmd/berth to report.
package config
