package dra

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// checkpointFile is upstream's name for the DRA manager's state under the
// root dir; the format below is upstream's too, so that either kubelet
// finds the other's prepared claims.
const checkpointFile = "dra_manager_state"

const (
	checkpointKind       = "DRACheckpoint"
	checkpointAPIVersion = "checkpoint.dra.kubelet.k8s.io/v1"
)

// claimState is what is recorded of one prepared (or being prepared)
// claim: upstream's ClaimInfoState, field for field.
type claimState struct {
	ClaimUID  types.UID
	ClaimName string
	Namespace string
	// PodUIDs are the pods on this node that use the claim; the claim is
	// unprepared when the last one goes.
	PodUIDs     sets.Set[string]
	DriverState map[string]driverState
}

// driverState is one driver's share of a claim: the devices its
// NodePrepareResources returned.
type driverState struct {
	Devices            []device
	SkipNodeOperations []resourceapi.SkipNodeOperation `json:"skipNodeOperations,omitempty"`
}

func (s driverState) skips(op resourceapi.SkipNodeOperation) bool {
	return slices.Contains(s.SkipNodeOperations, resourceapi.SkipNodeOperationAll) ||
		slices.Contains(s.SkipNodeOperations, op)
}

type device struct {
	PoolName     string
	DeviceName   string
	ShareID      *types.UID
	RequestNames []string
	CDIDeviceIDs []string
}

// checkpoint is the file's outer layer: the data as a string and its
// CRC32 (IEEE), as upstream's checkpoint manager writes it.
type checkpoint struct {
	Data     string
	Checksum uint32
}

type checkpointData struct {
	metav1.TypeMeta
	ClaimInfoStateList []claimState
}

func encodeCheckpoint(claims []claimState) ([]byte, error) {
	data, err := json.Marshal(checkpointData{
		TypeMeta:           metav1.TypeMeta{Kind: checkpointKind, APIVersion: checkpointAPIVersion},
		ClaimInfoStateList: claims,
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(checkpoint{Data: string(data), Checksum: crc32.ChecksumIEEE(data)})
}

func decodeCheckpoint(b []byte) ([]claimState, error) {
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, err
	}
	if sum := crc32.ChecksumIEEE([]byte(cp.Data)); sum != cp.Checksum {
		return nil, fmt.Errorf("checksum mismatch: recorded %d, data has %d", cp.Checksum, sum)
	}
	var data checkpointData
	if err := json.Unmarshal([]byte(cp.Data), &data); err != nil {
		return nil, err
	}
	return data.ClaimInfoStateList, nil
}

// readCheckpoint returns the claims recorded in dir; none when there is no
// file yet. A corrupt file is an error: its claims may be prepared, and
// forgetting them would leak devices (upstream refuses to start too).
func readCheckpoint(dir string) ([]claimState, error) {
	path := filepath.Join(dir, checkpointFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read DRA checkpoint: %w", err)
	}
	claims, err := decodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("DRA checkpoint %s is corrupt (drain the node and remove it): %w", path, err)
	}
	return claims, nil
}

// writeCheckpoint replaces the file in dir atomically and durably.
func writeCheckpoint(dir string, claims []claimState) error {
	b, err := encodeCheckpoint(claims)
	if err != nil {
		return fmt.Errorf("encode DRA checkpoint: %w", err)
	}
	path := filepath.Join(dir, checkpointFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write DRA checkpoint: %w", err)
	}
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
		return fmt.Errorf("write DRA checkpoint: %w", err)
	}
	return nil
}
