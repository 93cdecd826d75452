package userns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

func TestNewAllocatorChecks(t *testing.T) {
	for _, tt := range []struct {
		r         Range
		idsPerPod uint32
		maxPods   int
		wantErr   string
	}{
		{r: DefaultRange(65536), idsPerPod: 65536, maxPods: 110},
		{r: Range{First: 65536, Length: 65536 * 110}, idsPerPod: 65536, maxPods: 110},
		{r: DefaultRange(65536), idsPerPod: 1000, maxPods: 110, wantErr: "kubelet user namespace length 1000 is not a multiple of 65536"},
		{r: Range{First: 100000, Length: 65536 * 200}, idsPerPod: 65536, maxPods: 110, wantErr: "kubelet user assigned ID 100000 is not a multiple of 65536"},
		{r: Range{First: 0, Length: 65536 * 200}, idsPerPod: 65536, maxPods: 110, wantErr: "kubelet user assigned ID 0 must be greater or equal to 65536"},
		{r: Range{First: 65536, Length: 65536*200 + 1}, idsPerPod: 65536, maxPods: 110, wantErr: "is not a multiple of 65536"},
		{r: Range{First: 65536, Length: 65536 * 100}, idsPerPod: 65536, maxPods: 110, wantErr: "kubelet user assigned IDs are not enough to support 110 pods"},
	} {
		_, err := NewAllocator(tt.r, tt.idsPerPod, tt.maxPods)
		if got := ""; err != nil {
			got = err.Error()
			if !strings.Contains(got, tt.wantErr) || tt.wantErr == "" {
				t.Errorf("%+v: %q, want %q", tt, got, tt.wantErr)
			}
		} else if tt.wantErr != "" {
			t.Errorf("%+v: no error, want %q", tt, tt.wantErr)
		}
	}
}

func TestAllocator(t *testing.T) {
	a, err := NewAllocator(Range{First: 2 * 65536, Length: 3 * 65536}, 65536, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := map[types.UID]uint32{"a": 2 * 65536, "b": 3 * 65536, "c": 4 * 65536}
	for _, pod := range []types.UID{"a", "b", "c", "a"} {
		if got, err := a.Allocate(pod); err != nil || got != want[pod] {
			t.Errorf("Allocate(%s) = %d, %v; want %d", pod, got, err, want[pod])
		}
	}
	if _, err := a.Allocate("d"); err == nil || err.Error() != "could not find an empty slot to allocate a user namespace" {
		t.Errorf("full: %v", err)
	}
	a.Release("b")
	if got, err := a.Allocate("d"); err != nil || got != 3*65536 {
		t.Errorf("after a release: %d, %v; want the freed block", got, err)
	}
	for _, tt := range []struct {
		pod            types.UID
		hostID, length uint32
		wantErr        string
	}{
		{"a", 2 * 65536, 65536, ""}, // its own: fine
		{"a", 4 * 65536, 65536, `different user namespace range already used by pod "a"`},
		{"e", 4 * 65536, 65536, `range picked for pod "e" already taken`},
		{"e", 5 * 65536, 65536, "id 327680 is out of range"},
		{"e", 65536, 65536, "id 65536 is out of range"},
		{"e", 2*65536 + 1, 65536, "wrong user namespace offset specified 131073"},
		{"e", 2 * 65536, 1000, "wrong user namespace length 1000"},
	} {
		err := a.Record(tt.pod, tt.hostID, tt.length)
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.wantErr {
				t.Errorf("Record%+v: %q", tt, got)
			}
		} else if tt.wantErr != "" {
			t.Errorf("Record%+v: no error", tt)
		}
	}
}

func TestDecode(t *testing.T) {
	for content, wantErr := range map[string]string{
		`{"uidMappings":[{"hostId":131072,"containerId":0,"length":65536}],"gidMappings":[{"hostId":131072,"containerId":0,"length":65536}]}`: "",
		`{"uidMappings":[],"gidMappings":[]}`:                                                                                                 "no more than one mapping allowed",
		`{"uidMappings":[{"hostId":131072,"containerId":0,"length":65536}],"gidMappings":[]}`:                                                 "GID and UID mappings should be identical.",
		`{"uidMappings":[{"hostId":131072,"containerId":0,"length":65536}],"gidMappings":[{"hostId":196608,"containerId":0,"length":65536}]}`: "GID and UID mapping should be identical",
		`{"uidMappings":[{"hostId":131072,"containerId":1,"length":65536}],"gidMappings":[{"hostId":131072,"containerId":1,"length":65536}]}`: "UID 0 must be mapped",
		`not json`: "invalid user namespace mappings file",
	} {
		_, _, err := decode([]byte(content))
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: %v, want %q", content, err, wantErr)
		}
	}
}

func TestManager(t *testing.T) {
	root := t.TempDir()
	r := Range{First: 65536, Length: 4 * 65536}
	m, err := NewManager(klog.Background(), root, r, 65536, 4)
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.GetOrCreate("pod-a")
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
		Uids: []*runtimeapi.IDMapping{{HostId: 65536, Length: 65536}}, Gids: []*runtimeapi.IDMapping{{HostId: 65536, Length: 65536}}}
	if a.String() != want.String() {
		t.Errorf("pod-a: %v, want %v", a, want)
	}
	b, err := m.GetOrCreate("pod-b")
	if err != nil || b.Uids[0].HostId != 2*65536 {
		t.Fatalf("pod-b: %v %v", b, err)
	}
	if again, _ := m.GetOrCreate("pod-a"); again.String() != a.String() {
		t.Errorf("pod-a again: %v", again)
	}
	if _, err := os.Stat(filepath.Join(root, "pods", "pod-a", "userns")); err != nil {
		t.Errorf("not recorded: %v", err)
	}
	if _, err := m.GetOrCreate("../x"); err == nil {
		t.Error("a UID that is not a path segment was given a user namespace")
	}

	// A restarted berth keeps the blocks of pods on disk.
	m2, err := NewManager(klog.Background(), root, r, 65536, 4)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m2.GetOrCreate("pod-c")
	if err != nil || c.Uids[0].HostId != 3*65536 {
		t.Errorf("pod-c after a restart: %v %v; want the first free block", c, err)
	}
	if got, _ := m2.GetOrCreate("pod-b"); got.Uids[0].HostId != 2*65536 {
		t.Errorf("pod-b after a restart: %v", got)
	}

	// Released, the block is free again and the record gone.
	m2.Release("pod-a")
	if _, err := os.Stat(filepath.Join(root, "pods", "pod-a", "userns")); !os.IsNotExist(err) {
		t.Errorf("record left: %v", err)
	}
	if d, err := m2.GetOrCreate("pod-d"); err != nil || d.Uids[0].HostId != 65536 {
		t.Errorf("pod-d: %v %v; want pod-a's block", d, err)
	}

	// A broken record stops the start: its block might be in use.
	if err := os.WriteFile(filepath.Join(root, "pods", "pod-b", "userns"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(klog.Background(), root, r, 65536, 4); err == nil || !strings.Contains(err.Error(), `existing pod "pod-b"`) {
		t.Errorf("broken record: %v", err)
	}
}

func TestParseGetSubIDs(t *testing.T) {
	if r, err := parseGetSubIDs("0: kubelet 65536 2147483648\n"); err != nil || r != (Range{First: 65536, Length: 2147483648}) {
		t.Errorf("got %+v, %v", r, err)
	}
	for _, bad := range []string{"", "0: kubelet 65536\n", "0: kubelet a 1\n", "0: kubelet 1 2\n1: kubelet 3 4\n"} {
		if _, err := parseGetSubIDs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
