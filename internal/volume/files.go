package volume

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
)

// defaultFileMode is the API's default for defaultMode (0644); berth's own
// static pods may not carry the defaulted value.
const defaultFileMode = int32(0o644)

func modeOrDefault(mode *int32) int32 {
	if mode != nil {
		return *mode
	}
	return defaultFileMode
}

// setUpFiles writes the payload of a file-based volume (configMap, secret,
// downwardAPI, projected) into its directory — a tmpfs for the ones that
// may hold secrets — and reports whether the visible files changed since
// the last write. The payload is computed before anything is created, so a
// volume whose object is missing leaves nothing behind.
func (m *Manager) setUpFiles(ctx context.Context, pod *v1.Pod, vol *v1.Volume, vs *volumeState, pluginDir string, tmpfs bool, payload map[string]fileProjection) (bool, error) {
	dir := m.volumeDir(pod.UID, pluginDir, vol.Name)
	vs.path, vs.readOnly, vs.files = dir, true, true
	digest := digestPayload(payload)
	if vs.ready && digest == vs.digest {
		if _, err := os.Lstat(filepath.Join(dir, dataDirName)); err == nil {
			vs.refreshAt = time.Time{}
			return false, nil
		}
	}
	if !vs.ready {
		// The directory is an emptyDir's, as upstream wraps one.
		if err := makeDir(dir, emptyDirMode); err != nil {
			return false, err
		}
		if tmpfs {
			mounted, err := isTmpfsMount(dir)
			if err != nil {
				return false, fmt.Errorf("check mount of %s: %w", dir, err)
			}
			if !mounted {
				if err := mountTmpfs(dir, m.tmpfsSize(pod, nil)); err != nil {
					return false, err
				}
			}
		}
	}
	var setPerms func() error
	if fsGroup, _ := fsGroupOf(pod); fsGroup != nil {
		// The whole volume, since the first write also creates the links.
		setPerms = func() error { return applyFSGroup(dir, fsGroup, nil, true) }
	}
	changed, err := writeAtomically(dir, payload, setPerms)
	if err != nil {
		return false, err
	}
	first := !vs.ready
	vs.digest, vs.ready = digest, true
	vs.refreshAt = time.Time{} // projected volumes set their own
	if changed {
		m.logger(ctx, pod).V(3).Info("Wrote volume files", "volume", vol.Name, "files", len(payload))
	}
	return changed && !first, nil
}

// digestPayload hashes a payload: paths, modes, owners and content.
func digestPayload(payload map[string]fileProjection) [32]byte {
	paths := make([]string, 0, len(payload))
	for p := range payload {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.New()
	var n [8]byte
	for _, p := range paths {
		f := payload[p]
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
		binary.LittleEndian.PutUint64(n[:], uint64(f.mode))
		h.Write(n[:])
		owner := int64(-1)
		if f.fsUser != nil {
			owner = *f.fsUser
		}
		binary.LittleEndian.PutUint64(n[:], uint64(owner))
		h.Write(n[:])
		binary.LittleEndian.PutUint64(n[:], uint64(len(f.data)))
		h.Write(n[:])
		h.Write(f.data)
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}
