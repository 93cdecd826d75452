package csi

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// The API side of registration: the Node's annotation and labels, and the
// CSINode. Each update reads the object, applies a pure change and writes
// it with the read resourceVersion, retried until ctx ends (the Node may
// not be registered yet when a driver registers at start-up).

// retryBackoff paces the retries of one update.
var retryBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Cap: 5 * time.Second, Steps: 1 << 30}

func (m *Manager) retry(ctx context.Context, what string, f func(context.Context) error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, retryBackoff, func(ctx context.Context) (bool, error) {
		if last = f(ctx); last != nil {
			klog.FromContext(ctx).V(2).Info("Retrying", "what", what, "err", last)
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%s: %w", what, last)
	}
	return err
}

// installDriver publishes a registered driver on the Node and the CSINode.
func (m *Manager) installDriver(ctx context.Context, name string, info nodeInfo) error {
	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	if err := m.retry(ctx, "error updating Node object with CSI driver node info", func(ctx context.Context) error {
		return m.updateNode(ctx, func(n *v1.Node) (bool, error) {
			ann, c1, err := withNodeID(n.Annotations, name, info.nodeID)
			if err != nil {
				return false, err
			}
			labels, c2, err := withTopology(n.Labels, info.topology)
			if err != nil {
				return false, err
			}
			n.Annotations, n.Labels = ann, labels
			return c1 || c2, nil
		})
	}); err != nil {
		return err
	}
	return m.retry(ctx, "error updating CSINode object with CSI driver node info", func(ctx context.Context) error {
		return m.updateCSINode(ctx, func(cn *storagev1.CSINode) bool {
			a := withMigrationAnnotation(cn)
			return withDriver(cn, name, info) || a
		})
	})
}

// uninstallDriver removes a driver from the CSINode and the Node.
func (m *Manager) uninstallDriver(ctx context.Context, name string) error {
	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	if err := m.retry(ctx, "error uninstalling CSI driver from CSINode object", func(ctx context.Context) error {
		cn, err := m.client.StorageV1().CSINodes().Get(ctx, m.nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !withoutDriver(cn, name) {
			return nil
		}
		_, err = m.client.StorageV1().CSINodes().Update(ctx, cn, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return err
	}
	return m.retry(ctx, "error removing CSI driver node info from Node object", func(ctx context.Context) error {
		return m.updateNode(ctx, func(n *v1.Node) (bool, error) {
			ann, changed, err := withoutNodeID(n.Annotations, name)
			n.Annotations = ann
			return changed, err
		})
	})
}

// InitCSINode makes sure the node's CSINode exists, is this Node's and
// announces the migrated in-tree plugins, as upstream's kubelet does at
// start-up whether or not a driver registers. It waits for the Node to be
// registered and retries until ctx ends.
func (m *Manager) InitCSINode(ctx context.Context) error {
	if m.client == nil {
		return nil
	}
	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	return m.retry(ctx, "failed to initialize CSINode", func(ctx context.Context) error {
		return m.updateCSINode(ctx, withMigrationAnnotation)
	})
}

// updateNode applies change to the Node and writes its metadata back with
// a merge patch that carries the read resourceVersion (a conflict is
// retried by the caller).
func (m *Manager) updateNode(ctx context.Context, change func(*v1.Node) (bool, error)) error {
	node, err := m.client.CoreV1().Nodes().Get(ctx, m.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	n := node.DeepCopy()
	changed, err := change(n)
	if err != nil || !changed {
		return err
	}
	patch, err := nodeMetadataPatch(node, n)
	if err != nil {
		return err
	}
	_, err = m.client.CoreV1().Nodes().Patch(ctx, m.nodeName, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// nodeMetadataPatch is a JSON merge patch from old's labels and annotations
// to new's, with old's resourceVersion as precondition.
func nodeMetadataPatch(old, updated *v1.Node) ([]byte, error) {
	diff := func(a, b map[string]string) map[string]any {
		out := map[string]any{}
		for k, v := range b {
			if a[k] != v {
				out[k] = v
			}
		}
		for k := range a {
			if _, ok := b[k]; !ok {
				out[k] = nil
			}
		}
		return out
	}
	meta := map[string]any{"resourceVersion": old.ResourceVersion}
	if d := diff(old.Labels, updated.Labels); len(d) > 0 {
		meta["labels"] = d
	}
	if d := diff(old.Annotations, updated.Annotations); len(d) > 0 {
		meta["annotations"] = d
	}
	return json.Marshal(map[string]any{"metadata": meta})
}

// updateCSINode applies change to the CSINode, creating it (owned by the
// Node) when missing, and replacing one left by an earlier Node of the same
// name.
func (m *Manager) updateCSINode(ctx context.Context, change func(*storagev1.CSINode) bool) error {
	node, err := m.client.CoreV1().Nodes().Get(ctx, m.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	csiNodes := m.client.StorageV1().CSINodes()
	cn, err := csiNodes.Get(ctx, m.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cn, err = csiNodes.Create(ctx, newCSINode(m.nodeName, node.UID), metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	if !ownedBy(cn, m.nodeName, node.UID) {
		if err := csiNodes.Delete(ctx, m.nodeName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cn.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("error deleting existing CSINode %q: %w", cn.Name, err)
		}
		return fmt.Errorf("CSINode %q was owned by a different node, deleted it", cn.Name)
	}
	if !change(cn) {
		return nil
	}
	_, err = csiNodes.Update(ctx, cn, metav1.UpdateOptions{})
	return err
}
