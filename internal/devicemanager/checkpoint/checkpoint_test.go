package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// testdata/upstream_checkpoint was written by upstream's checkpoint
// package (k8s.io/kubernetes v1.37.2, MarshalCheckpoint) for this data.
func upstreamData() *Data {
	return New([]PodDevicesEntry{{
		PodUID: "uid-1", ContainerName: "app", ResourceName: "example.com/resource",
		DeviceIDs: DevicesPerNUMA{-1: {"Dev-1"}},
		AllocResp: []byte("\n\f\n\x03DEV\x12\x05Dev-1\x12\x18\n\n/tmp/Dev-1\x12\n/tmp/Dev-1"),
	}}, map[string][]string{"example.com/resource": {"Dev-1", "Dev-2"}})
}

func TestUpstreamFormat(t *testing.T) {
	golden, err := os.ReadFile("testdata/upstream_checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	// berth reads upstream's file...
	got, err := Unmarshal(golden)
	if err != nil {
		t.Fatalf("reading upstream's checkpoint: %v", err)
	}
	want := upstreamData()
	if !reflect.DeepEqual(got.Data, want.Data) {
		t.Errorf("read %+v, want %+v", got.Data, want.Data)
	}
	// ...and writes the same bytes, checksum included.
	b, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, golden) {
		t.Errorf("wrote\n%s\nupstream wrote\n%s", b, golden)
	}
}

func TestCorrupt(t *testing.T) {
	golden, err := os.ReadFile("testdata/upstream_checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(golden, []byte("Dev-2"), []byte("Dev-3"), 1)
	if _, err := Unmarshal(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Unmarshal(changed data) = %v, want ErrCorrupt", err)
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	if d, err := Read(dir); d != nil || err != nil {
		t.Fatalf("Read(empty dir) = %v, %v; want nothing", d, err)
	}
	if err := Write(dir, upstreamData()); err != nil {
		t.Fatal(err)
	}
	d, err := Read(dir)
	if err != nil || !reflect.DeepEqual(d.Data, upstreamData().Data) {
		t.Fatalf("Read = %+v, %v", d, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d files, want the checkpoint alone", len(entries))
	}
}
