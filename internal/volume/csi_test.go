package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// fakeCSI publishes a volume as a directory under dir, and records calls.
type fakeCSI struct {
	dir        string
	ownFSGroup bool

	mu    sync.Mutex
	calls []string
}

func (f *fakeCSI) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeCSI) SetUpPersistent(_ context.Context, pod *v1.Pod, volName string, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, readOnly bool) (string, bool, error) {
	f.record("persistent " + volName + " " + pvc.Name + " " + pv.Spec.CSI.VolumeHandle)
	p := filepath.Join(f.dir, string(pod.UID), volName)
	return p, f.ownFSGroup, os.MkdirAll(p, 0o755)
}

func (f *fakeCSI) SetUpInline(_ context.Context, pod *v1.Pod, vol *v1.Volume) (string, bool, error) {
	f.record("inline " + vol.Name)
	p := filepath.Join(f.dir, string(pod.UID), vol.Name)
	return p, f.ownFSGroup, os.MkdirAll(p, 0o755)
}

func (f *fakeCSI) TearDownPod(_ context.Context, uid types.UID) error {
	f.record("teardown " + string(uid))
	return nil
}

func csiHarness(t *testing.T, objs ...runtime.Object) (*harness, *fakeCSI) {
	h := newHarness(t, objs...)
	fc := &fakeCSI{dir: t.TempDir()}
	h.m.csi = fc
	return h, fc
}

func TestCSIPersistentVolumeClaim(t *testing.T) {
	pv := volumeFor("pv1", v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "x", VolumeHandle: "h"}}, nil)
	h, fc := csiHarness(t, boundClaim("data", "pv1"), pv)
	fc.ownFSGroup = true
	pod := newPod("u1", claimVolume("data", "data", true))
	gid := int64(os.Getgid() + 1)
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: &gid}
	if err := h.m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	v, ok := h.m.Volume(pod.UID, "data")
	if !ok || v.Path != filepath.Join(fc.dir, "u1", "data") || !v.ReadOnly {
		t.Fatalf("Volume = %+v, %v", v, ok)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(v.Path, &st); err != nil || int64(st.Gid) != gid {
		t.Errorf("fsGroup not applied: gid %d, %v", st.Gid, err)
	}
	if err := h.m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fc.calls, ",") != "persistent data data h,teardown u1" {
		t.Errorf("calls = %q", fc.calls)
	}
}

func TestCSIInline(t *testing.T) {
	h, fc := csiHarness(t)
	ro := true
	pod := newPod("u1", v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "x", ReadOnly: &ro}}})
	if err := h.m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if v, ok := h.m.Volume(pod.UID, "scratch"); !ok || !v.ReadOnly || v.Path != filepath.Join(fc.dir, "u1", "scratch") {
		t.Fatalf("Volume = %+v, %v", v, ok)
	}
}

func TestGenericEphemeralVolume(t *testing.T) {
	ephemeralVol := v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}}
	pv := volumeFor("pv1", v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "x", VolumeHandle: "h"}}, nil)
	pod := newPod("u1", ephemeralVol)
	claim := func(owner types.UID) *v1.PersistentVolumeClaim {
		c := boundClaim(pod.Name+"-scratch", "pv1")
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: owner, Controller: ptrTo(true)}}
		return c
	}
	t.Run("the pod's claim", func(t *testing.T) {
		h, fc := csiHarness(t, claim(pod.UID), pv)
		if err := h.m.SetUp(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
		if strings.Join(fc.calls, ",") != "persistent scratch "+pod.Name+"-scratch h" {
			t.Errorf("calls = %q", fc.calls)
		}
	})
	t.Run("another pod's claim", func(t *testing.T) {
		h, _ := csiHarness(t, claim("other"), pv)
		err := h.m.SetUp(context.Background(), pod)
		if err == nil || !strings.Contains(err.Error(), "was not created for pod") {
			t.Errorf("SetUp = %v", err)
		}
	})
	t.Run("not made yet", func(t *testing.T) {
		h, _ := csiHarness(t, pv)
		err := h.m.SetUp(context.Background(), pod)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("SetUp = %v", err)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
