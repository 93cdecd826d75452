// Package checkpoint is the device manager's checkpoint in upstream's
// format (device-plugins/kubelet_internal_checkpoint), so that either
// kubelet reads the other's file. The package and type names are part of
// the format: upstream's checksum hashes the data as printed with its Go
// type names (checkpoint.checkpointData, checkpoint.PodDevicesEntry, ...).
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"

	"k8s.io/utils/dump"
)

// FileName is the checkpoint's name in the device plugin directory.
const FileName = "kubelet_internal_checkpoint"

// DevicesPerNUMA are the device IDs of one allocation by NUMA node (-1:
// devices without topology).
type DevicesPerNUMA map[int64][]string

// PodDevicesEntry is one container's allocation of one resource, with the
// plugin's Allocate response (protobuf).
type PodDevicesEntry struct {
	PodUID        string
	ContainerName string
	ResourceName  string
	DeviceIDs     DevicesPerNUMA
	AllocResp     []byte
}

// checkpointData must keep upstream's name: it is in the checksum.
type checkpointData struct {
	PodDeviceEntries  []PodDevicesEntry
	RegisteredDevices map[string][]string
}

// Data is the file's content.
type Data struct {
	Data     checkpointData
	Checksum uint64
}

// New is the checkpoint of entries and registered (healthy) devices by
// resource.
func New(entries []PodDevicesEntry, registered map[string][]string) *Data {
	return &Data{Data: checkpointData{PodDeviceEntries: entries, RegisteredDevices: registered}}
}

// Entries and Registered return the content.
func (d *Data) Entries() []PodDevicesEntry      { return d.Data.PodDeviceEntries }
func (d *Data) Registered() map[string][]string { return d.Data.RegisteredDevices }
func checksum(data checkpointData) uint64 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(data))
	return uint64(h.Sum32())
}

// Marshal returns the file's bytes, checksum set.
func (d *Data) Marshal() ([]byte, error) {
	d.Checksum = checksum(d.Data)
	return json.Marshal(*d)
}

// ErrCorrupt is returned for a checkpoint whose checksum does not match.
var ErrCorrupt = errors.New("checkpoint is corrupt")

// Unmarshal reads a checkpoint and verifies its checksum.
func Unmarshal(b []byte) (*Data, error) {
	d := &Data{}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if sum := checksum(d.Data); sum != d.Checksum {
		return nil, fmt.Errorf("%w: checksum %d, expected %d", ErrCorrupt, sum, d.Checksum)
	}
	return d, nil
}

// Read reads the checkpoint in dir; (nil, nil) when there is none.
func Read(dir string) (*Data, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return Unmarshal(b)
}

// Write writes d to dir atomically (a reader sees the old or the new
// file, never part of one).
func Write(dir string, d *Data) error {
	b, err := d.Marshal()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+FileName+"-")
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
	return os.Rename(tmp.Name(), filepath.Join(dir, FileName))
}
