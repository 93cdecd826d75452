// Package devicemanager is berth's device manager: device plugins
// (deviceplugin/v1beta1) register at <root>/device-plugins/kubelet.sock (or
// through plugins_registry as type DevicePlugin), their ListAndWatch
// devices become extended resources of the Node (capacity: all devices,
// allocatable: the healthy ones), pods asking for them get devices at
// admission (Allocate, GetPreferredAllocation; too few free devices is
// upstream's UnexpectedAdmissionError), and each container is given what
// the plugin answered (env, mounts, device nodes, annotations, CDI
// devices; PreStartContainer first when the plugin asks for it) through
// runtime.ContainerExtrasSource. Allocations are checkpointed in upstream's
// file (device-plugins/kubelet_internal_checkpoint) and survive a berth
// restart; a pod's devices are freed once its containers are gone.
//
// Which devices a container gets is decided by a pure function
// (pickDevices); the gRPC calls and the checkpoint are at the edges.
package devicemanager
