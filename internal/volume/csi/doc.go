// Package csi serves volumes of CSI drivers (the kubelet's "kubernetes.io/csi"
// volume plugin): drivers register through the plugin watcher
// (internal/pluginmanager, type "CSIPlugin", as node-driver-registrar does),
// their NodeGetInfo goes to the CSINode object and the Node (the
// csi.volume.kubernetes.io/nodeid annotation and the topology labels), and
// the volume manager (internal/volume) hands this package the volumes it
// does not set up itself:
//
//	PersistentVolume with spec.csi   attach wait (VolumeAttachment) when the
//	                                 CSIDriver requires it, NodeStageVolume to
//	                                 the global mount (STAGE_UNSTAGE_VOLUME),
//	                                 NodePublishVolume to the pod's volume dir,
//	                                 NodeExpandVolume when the claim waits for
//	                                 it (EXPAND_VOLUME)
//	inline csi volume                NodePublishVolume only (Ephemeral mode)
//
// Paths are upstream's, so either kubelet finds the other's volumes:
//
//	RootDir/plugins/kubernetes.io/csi/<driver>/<sha256(handle)>/globalmount
//	RootDir/plugins/kubernetes.io/csi/<driver>/<sha256(handle)>/vol_data.json
//	RootDir/pods/<uid>/volumes/kubernetes.io~csi/<pv or volume name>/mount
//	RootDir/pods/<uid>/volumes/kubernetes.io~csi/<pv or volume name>/vol_data.json
//
// Teardown is driven by what is on disk, not by memory, so that a restarted
// berth unpublishes the volumes of pods deleted while it was down: every
// vol_data.json under the pod's directory is unpublished, and a staged
// volume no other pod's vol_data.json names any more is unstaged.
package csi
