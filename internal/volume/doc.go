// Package volume is berth's volume manager: it sets up the volumes of a pod
// before its containers start, keeps the file-based ones fresh while the
// pod runs, and tears them down once the pod's containers are gone.
//
// Each volume type is a small plugin in its own file (emptydir.go,
// hostpath.go, configmap.go, secret.go, downwardapi.go, projected.go,
// pvc.go); plugins.go picks one per volume and names the types berth does
// not support yet. Volumes live where the upstream kubelet keeps them, so
// tools that know its layout find them:
//
//	RootDir/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>    disk or tmpfs
//	RootDir/pods/<uid>/volumes/kubernetes.io~configmap/<name>    disk
//	RootDir/pods/<uid>/volumes/kubernetes.io~secret/<name>       tmpfs
//	RootDir/pods/<uid>/volumes/kubernetes.io~downward-api/<name> tmpfs
//	RootDir/pods/<uid>/volumes/kubernetes.io~projected/<name>    tmpfs
//	RootDir/pods/<uid>/plugins/kubernetes.io~empty-dir/<name>/ready
//
// hostPath and persistentVolumeClaim volumes (bound to a local or hostPath
// PersistentVolume) have no directory of their own: containers mount the
// host path directly. CSI volumes (a claim bound to a PersistentVolume with
// spec.csi, a generic ephemeral volume's claim, an inline csi volume) are
// set up by the CSI manager (the CSI interface, internal/volume/csi) under
// pods/<uid>/volumes/kubernetes.io~csi/<name>/mount; TearDown has it
// unpublish them before it unmounts anything else.
//
// File-based volumes (configMap, secret, downwardAPI, projected) are written
// by atomicWriter exactly as upstream's AtomicWriter does: the files live in
// a timestamped directory, "..data" is a symlink to it, and the visible
// names are symlinks through "..data"; an update writes a new timestamped
// directory and renames a new "..data" over the old one, so a reader sees
// either the old or the new set of files, never a mix.
//
// Lifecycle, driven by the pod worker:
//
//	SetUp(pod)     every sync: sets up what is missing, rewrites what changed
//	               (cheap when nothing did); FailedMount event per failing volume
//	Volume(uid, n) where a container mounts volume n from, and whether read-only
//	TearDown(uid)  after the containers are gone: unmount, remove the volume dirs
//	Run            rewrites volumes when their ConfigMap/Secret changes
//	               (ObjectChanged) and refreshes tokens at 80% of their lifetime
//	CleanupOrphans after a restart: removes the directories of pods nobody wants
package volume
