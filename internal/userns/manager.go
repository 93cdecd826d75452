package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// Manager hands out pods' user namespaces and keeps each pod's block in its
// directory under RootDir/pods.
type Manager struct {
	rootDir string
	mu      sync.Mutex
	alloc   *Allocator
}

// NewManager builds the allocator for r and records the blocks of the pods
// that have a "userns" file under rootDir/pods (pods running across a
// restart). A file that cannot be read or recorded is an error: handing
// its block to another pod would let two pods share IDs.
func NewManager(logger klog.Logger, rootDir string, r Range, idsPerPod uint32, maxPods int) (*Manager, error) {
	alloc, err := NewAllocator(r, idsPerPod, maxPods)
	if err != nil {
		return nil, err
	}
	m := &Manager{rootDir: rootDir, alloc: alloc}
	entries, err := os.ReadDir(filepath.Join(rootDir, "pods"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read pods from disk: %w", err)
	}
	for _, e := range entries {
		uid := types.UID(e.Name())
		b, err := m.read(uid)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			var hostID, length uint32
			if hostID, length, err = decode(b); err == nil {
				err = alloc.Record(uid, hostID, length)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("record pod mappings for existing pod %q: %w", uid, err)
		}
		logger.V(4).Info("Recorded the user namespace of a pod on disk", "podUID", uid)
	}
	return m, nil
}

// GetOrCreate returns pod's user namespace: the block recorded for it, or
// a new one, recorded in its directory before it is used.
func (m *Manager) GetOrCreate(pod types.UID) (*runtimeapi.UserNamespace, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.read(pod)
	switch {
	case err == nil:
		hostID, length, err := decode(b)
		if err == nil {
			err = m.alloc.Record(pod, hostID, length)
		}
		if err != nil {
			return nil, fmt.Errorf("user namespace: %w", err)
		}
		return mapping(hostID, length), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	hostID, err := m.alloc.Allocate(pod)
	if err != nil {
		return nil, fmt.Errorf("create user namespace: %w", err)
	}
	if err := m.write(pod, hostID, m.alloc.Length()); err != nil {
		m.alloc.Release(pod)
		return nil, fmt.Errorf("create user namespace: %w", err)
	}
	return mapping(hostID, m.alloc.Length()), nil
}

// Release frees pod's block and removes its record.
func (m *Manager) Release(pod types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alloc.Release(pod)
	if dir, err := container.PodDir(m.rootDir, pod); err == nil {
		_ = os.Remove(filepath.Join(dir, fileName))
	}
}

func mapping(hostID, length uint32) *runtimeapi.UserNamespace {
	ids := []*runtimeapi.IDMapping{{HostId: hostID, ContainerId: 0, Length: length}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}
}

func (m *Manager) read(pod types.UID) ([]byte, error) {
	dir, err := container.PodDir(m.rootDir, pod)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, fileName))
}

// write records the block atomically and durably (the directory is synced
// too), as upstream's file store does: after a crash the file is either
// there whole or not at all, and a pod that ran has it.
func (m *Manager) write(pod types.UID, hostID, length uint32) error {
	dir, err := container.PodDir(m.rootDir, pod)
	if err != nil {
		return err
	}
	b, err := encode(hostID, length)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+fileName+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, fileName)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
