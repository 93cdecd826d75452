// Package cdi turns Container Device Interface device names
// ("vendor.com/class=name", as DRA drivers and device plugins return them)
// into what a CRI container config can carry: environment variables,
// device nodes and bind mounts.
//
// A runtime with CDI support (containerd 1.7+ with enable_cdi, CRI-O)
// resolves the names itself from the CRI config's CDIDevices, as upstream's
// kubelet relies on; a runtime without it (containerd 1.6) ignores that
// field, so berth resolves the names from the spec files itself
// (RuntimeResolves decides which). Edits CRI cannot express (OCI hooks,
// Intel RDT, additional GIDs, network devices, non-bind mounts) are an
// error rather than silently left out.
package cdi
