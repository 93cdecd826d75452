package csi

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// nodeIDAnnotation maps each driver registered on the node to its node ID
// (JSON), as upstream's nodeinfomanager keeps it.
const nodeIDAnnotation = "csi.volume.kubernetes.io/nodeid"

// migratedPlugins are the in-tree plugins whose volumes the kubelet serves
// through CSI (all of them, since CSI migration went GA), announced on the
// CSINode as upstream does (v1.MigratedPluginsAnnotationKey).
var migratedPlugins = []string{
	"kubernetes.io/aws-ebs",
	"kubernetes.io/azure-disk",
	"kubernetes.io/azure-file",
	"kubernetes.io/cinder",
	"kubernetes.io/gce-pd",
	"kubernetes.io/portworx-volume",
	"kubernetes.io/vsphere-volume",
}

// nodeInfo is what a driver's NodeGetInfo says of this node.
type nodeInfo struct {
	nodeID    string
	maxVolume int64
	topology  map[string]string
}

// Node metadata: the changes upstream's nodeinfomanager makes, as pure
// functions of the Node's current labels and annotations.

// withNodeID returns the annotations with the driver's node ID set, and
// whether that changed them.
func withNodeID(annotations map[string]string, driverName, nodeID string) (map[string]string, bool, error) {
	ids, err := nodeIDs(annotations)
	if err != nil {
		return nil, false, err
	}
	if ids[driverName] == nodeID {
		return annotations, false, nil
	}
	ids[driverName] = nodeID
	return setNodeIDs(annotations, ids), true, nil
}

// withoutNodeID returns the annotations without the driver's node ID.
func withoutNodeID(annotations map[string]string, driverName string) (map[string]string, bool, error) {
	ids, err := nodeIDs(annotations)
	if err != nil {
		return nil, false, err
	}
	if _, ok := ids[driverName]; !ok {
		return annotations, false, nil
	}
	delete(ids, driverName)
	return setNodeIDs(annotations, ids), true, nil
}

func nodeIDs(annotations map[string]string) (map[string]string, error) {
	ids := map[string]string{}
	if s := annotations[nodeIDAnnotation]; s != "" {
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, fmt.Errorf("failed to parse node's %q annotation value (%q) err=%v", nodeIDAnnotation, s, err)
		}
	}
	return ids, nil
}

func setNodeIDs(annotations map[string]string, ids map[string]string) map[string]string {
	out := maps.Clone(annotations)
	if out == nil {
		out = map[string]string{}
	}
	if len(ids) == 0 {
		delete(out, nodeIDAnnotation)
		return out
	}
	b, _ := json.Marshal(ids) // a map of strings always marshals
	out[nodeIDAnnotation] = string(b)
	return out
}

// withTopology returns the labels with the driver's topology segments; a
// segment that another value already holds is an error, as upstream.
func withTopology(labels map[string]string, topology map[string]string) (map[string]string, bool, error) {
	changed := false
	for k, v := range topology {
		cur, ok := labels[k]
		if ok && cur != v {
			return nil, false, fmt.Errorf("detected topology value collision: driver reported %q:%q but existing label is %q:%q", k, v, k, cur)
		}
		if !ok {
			changed = true
		}
	}
	if !changed {
		return labels, false, nil
	}
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, topology)
	return out, true, nil
}

// CSINode.

// newCSINode is the node's CSINode, owned by the Node so that it goes with it.
func newCSINode(nodeName string, nodeUID types.UID) *storagev1.CSINode {
	return &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{
			Name:        nodeName,
			Annotations: map[string]string{v1.MigratedPluginsAnnotationKey: strings.Join(migratedPlugins, ",")},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1",
				Kind:       "Node",
				Name:       nodeName,
				UID:        nodeUID,
			}},
		},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{}},
	}
}

// ownedBy: the CSINode belongs to this Node object (a CSINode left from a
// Node of the same name that was deleted and registered again does not).
func ownedBy(cn *storagev1.CSINode, nodeName string, nodeUID types.UID) bool {
	for _, ref := range cn.OwnerReferences {
		if ref.Kind == "Node" && ref.Name == nodeName && ref.UID == nodeUID {
			return true
		}
	}
	return false
}

// withMigrationAnnotation sets the migrated plugins annotation; reports a change.
func withMigrationAnnotation(cn *storagev1.CSINode) bool {
	want := strings.Join(migratedPlugins, ",")
	if cn.Annotations[v1.MigratedPluginsAnnotationKey] == want {
		return false
	}
	if cn.Annotations == nil {
		cn.Annotations = map[string]string{}
	}
	cn.Annotations[v1.MigratedPluginsAnnotationKey] = want
	return true
}

// withDriver puts the driver's entry on the CSINode (replacing an older
// one); reports a change. A max volume count above int32 is truncated, as
// upstream.
func withDriver(cn *storagev1.CSINode, name string, info nodeInfo) bool {
	keys := slices.Sorted(maps.Keys(info.topology))
	entry := storagev1.CSINodeDriver{Name: name, NodeID: info.nodeID, TopologyKeys: keys}
	if info.maxVolume > 0 {
		n := int32(min(info.maxVolume, math.MaxInt32))
		entry.Allocatable = &storagev1.VolumeNodeResources{Count: &n}
	}
	i := slices.IndexFunc(cn.Spec.Drivers, func(d storagev1.CSINodeDriver) bool { return d.Name == name })
	if i >= 0 && sameDriverEntry(cn.Spec.Drivers[i], entry) {
		return false
	}
	drivers := slices.DeleteFunc(slices.Clone(cn.Spec.Drivers), func(d storagev1.CSINodeDriver) bool { return d.Name == name })
	cn.Spec.Drivers = append(drivers, entry)
	return true
}

func sameDriverEntry(a, b storagev1.CSINodeDriver) bool {
	count := func(d storagev1.CSINodeDriver) int32 {
		if d.Allocatable == nil || d.Allocatable.Count == nil {
			return -1
		}
		return *d.Allocatable.Count
	}
	ak, bk := slices.Sorted(slices.Values(a.TopologyKeys)), slices.Sorted(slices.Values(b.TopologyKeys))
	return a.NodeID == b.NodeID && slices.Equal(ak, bk) && count(a) == count(b)
}

// withoutDriver removes the driver's entry; reports a change.
func withoutDriver(cn *storagev1.CSINode, name string) bool {
	n := len(cn.Spec.Drivers)
	cn.Spec.Drivers = slices.DeleteFunc(cn.Spec.Drivers, func(d storagev1.CSINodeDriver) bool { return d.Name == name })
	return len(cn.Spec.Drivers) != n
}
