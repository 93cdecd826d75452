// Package objects keeps the ConfigMaps and Secrets that berth's pods
// reference, as upstream's watch-based manager does: one single-object
// watch per referenced object (field selector metadata.name=<name> in its
// namespace, which the Node authorizer permits for objects of the node's
// pods), reference-counted by pod, and stopped once no pod references the
// object any more.
//
// RegisterPod starts the watches a pod needs; it is cheap and idempotent,
// and a later call for the same pod replaces the earlier set of
// references. Get waits briefly for the first list of a just-registered
// object, then answers from memory. Every change to a watched object is
// reported to the Subscriber given to Run, after the new version is visible to
// Get, so the volume manager can rewrite the files of the affected pods at
// once instead of polling.
package objects
