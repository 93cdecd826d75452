package allocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/dump"
)

// Checkpoint file names under the root directory, upstream's.
const (
	AllocatedFile = "allocated_pods_state"
	ActuatedFile  = "actuated_pods_state"
)

// PodResourceInfo is what is recorded for one pod, in upstream's shape
// (field names are the JSON keys: upstream's type has no tags).
type PodResourceInfo struct {
	// ContainerResources by container name.
	ContainerResources map[string]v1.ResourceRequirements
	// PodLevelResources is spec.resources; berth records it but does not
	// resize it.
	PodLevelResources *v1.ResourceRequirements
	// EmptyDirVolumeLimits is kept so that a file upstream wrote reads
	// back unchanged; berth does not resize volumes.
	EmptyDirVolumeLimits map[string]*resource.Quantity
}

// stateInfo is the checkpoint's data.
type stateInfo struct {
	Entries map[types.UID]PodResourceInfo `json:"entries,omitempty"`
}

// checkpointFile is upstream's checkpoint envelope: the data as a JSON
// string and its checksum (fnv32a over the data as the checkpoint manager
// hashes it), so either kubelet reads the other's file.
type checkpointFile struct {
	Data     string `json:"data"`
	Checksum uint64 `json:"checksum"`
}

func checksum(data string) uint64 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(data))
	return uint64(h.Sum32())
}

// store is one checkpoint: the entries in memory, written through to path
// ("" keeps them in memory only). entries and version are guarded by the
// Manager's mutex; the file is written outside it (persist), so that
// readers never wait for the disk.
type store struct {
	path    string
	entries map[types.UID]PodResourceInfo
	// version counts changes of entries; written is the version the file
	// holds (both guarded by the Manager's mutex). wmu orders the writes.
	version, written uint64
	wmu              sync.Mutex
	last             uint64 // checksum of the file's data
}

func openStore(dir, name string) (*store, error) {
	s := &store{entries: map[types.UID]PodResourceInfo{}}
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, name)
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	var cp checkpointFile
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("parse %s: %w", s.path, err)
	}
	if sum := checksum(cp.Data); sum != cp.Checksum {
		return nil, fmt.Errorf("%s is corrupt (checksum %d, expected %d); drain the node and delete it before restarting berth", s.path, sum, cp.Checksum)
	}
	var info stateInfo
	if err := json.Unmarshal([]byte(cp.Data), &info); err != nil {
		return nil, fmt.Errorf("parse the data of %s: %w", s.path, err)
	}
	if info.Entries != nil {
		s.entries = info.Entries
	}
	s.last = cp.Checksum
	return s, nil
}

// persist writes the store's entries if they changed since the file was
// last written, atomically (temporary file, fsync, rename), as upstream's
// checkpoint manager. mu guards entries. Writers that queue behind
// another find their change already written by it (it takes the entries
// as they are when it gets its turn), so a burst costs few writes.
func (s *store) persist(mu *sync.Mutex) error {
	if s.path == "" {
		return nil
	}
	mu.Lock()
	clean := s.version == s.written
	mu.Unlock()
	if clean {
		return nil // the common case: no wait behind another's write
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	mu.Lock()
	if s.version == s.written {
		mu.Unlock()
		return nil
	}
	v := s.version
	data, err := json.Marshal(stateInfo{Entries: s.entries})
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode %s: %w", s.path, err)
	}
	cp := checkpointFile{Data: string(data), Checksum: checksum(string(data))}
	if cp.Checksum != s.last {
		b, err := json.Marshal(cp)
		if err != nil {
			return fmt.Errorf("encode %s: %w", s.path, err)
		}
		if err := writeAtomic(s.path, b); err != nil {
			return err
		}
		s.last = cp.Checksum
	}
	mu.Lock()
	s.written = v
	mu.Unlock()
	return nil
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ResourceInfoForPod is what is recorded for pod: every init and regular
// container's resources (upstream's resizable containers; init containers
// are resizable since InPlacePodVerticalScalingInitContainers went GA in
// v1.37) and the pod-level resources.
func ResourceInfoForPod(pod *v1.Pod) PodResourceInfo {
	info := PodResourceInfo{ContainerResources: map[string]v1.ResourceRequirements{}}
	if pod.Spec.Resources != nil {
		info.PodLevelResources = pod.Spec.Resources.DeepCopy()
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if IsResizable(c, true) {
			info.ContainerResources[c.Name] = *c.Resources.DeepCopy()
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		info.ContainerResources[c.Name] = *c.Resources.DeepCopy()
	}
	return info
}

// IsResizable reports whether a container's resources change in place:
// init and regular containers (ephemeral containers have no resources).
func IsResizable(c *v1.Container, initContainer bool) bool { return true }
