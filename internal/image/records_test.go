package image

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestRecordsPullLifecycle(t *testing.T) {
	root := t.TempDir()
	r, err := OpenRecords(root)
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Unix(3000, 0).UTC())
	logger := klog.Background()
	const image, ref = "127.0.0.1:5000/private/app:1", "sha256:abc"
	intentFile := filepath.Join(root, "image_manager", "pulling", recordName(image))
	pulledFile := filepath.Join(root, "image_manager", "pulled", recordName(ref))

	if rec, intent, err := r.lookup(image, ref); err != nil || rec != nil || intent {
		t.Fatalf("empty: lookup = %v, %v, %v", rec, intent, err)
	}
	// Two pulls of the image at once: the intent stays until both end.
	for range 2 {
		if err := r.startPull(image); err != nil {
			t.Fatal(err)
		}
	}
	if _, intent, _ := r.lookup(image, ref); !intent {
		t.Error("no intent during the pull")
	}
	r.endPull(logger, image, "", nil, now) // failed
	if _, err := os.Stat(intentFile); err != nil {
		t.Errorf("intent gone while a pull is still in flight: %v", err)
	}
	secret := kubeletconfig.ImagePullSecret{UID: "u1", Namespace: "a", Name: "good", CredentialHash: "h1"}
	creds := pullCredentials(&Credential{Secret: &secret})
	r.endPull(logger, image, ref, &creds, now)
	if _, err := os.Stat(intentFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("intent left after the last pull: %v", err)
	}

	// The file is upstream's: kind and apiVersion, then the record.
	data, err := os.ReadFile(pulledFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["kind"] != "ImagePulledRecord" || raw["apiVersion"] != "kubelet.config.k8s.io/v1beta1" || raw["imageRef"] != ref {
		t.Errorf("pulled record file: %s", data)
	}
	rec, intent, err := r.lookup(image, ref)
	want := map[string]kubeletconfig.ImagePullCredentials{"127.0.0.1:5000/private/app": creds}
	if err != nil || intent || rec == nil || !reflect.DeepEqual(rec.CredentialMapping, want) || !rec.LastUpdatedTime.Equal(&now) {
		t.Errorf("lookup after the pull = %+v, %v, %v; want mapping %+v", rec, intent, err, want)
	}
}

// TestRecordsReadUpstream reads records as upstream's kubelet writes them,
// and refuses what is not one.
func TestRecordsReadUpstream(t *testing.T) {
	root := t.TempDir()
	r, err := OpenRecords(root)
	if err != nil {
		t.Fatal(err)
	}
	const ref = "sha256:a6b2e0c4"
	upstream := `{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2026-12-01T10:00:00Z","imageRef":"sha256:a6b2e0c4","credentialMapping":{"registry.example/app":{"kubernetesSecrets":[{"uid":"u1","namespace":"a","name":"good","credentialHash":"h1"}]},"busybox":{"nodePodsAccessible":true}}}` + "\n"
	path := filepath.Join(root, "image_manager", "pulled", recordName(ref))
	if err := os.WriteFile(path, []byte(upstream), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, _, err := r.lookup("busybox", ref)
	if err != nil || rec == nil || !rec.CredentialMapping["busybox"].NodePodsAccessible ||
		rec.CredentialMapping["registry.example/app"].KubernetesSecrets[0].CredentialHash != "h1" {
		t.Fatalf("lookup = %+v, %v", rec, err)
	}
	for _, bad := range []string{
		`{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"x"}`,
		`{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","imageRef":"sha256:a6b2e0c4","extra":1}`,
		`{`,
	} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.lookup("busybox", ref); err == nil {
			t.Errorf("lookup accepted %s", bad)
		}
	}
}

// TestRecordsRecover turns the intents of an interrupted run into records
// without credentials for the images that are present.
func TestRecordsRecover(t *testing.T) {
	root := t.TempDir()
	r, err := OpenRecords(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"present:1", "absent:1"} {
		if err := r.startPull(image); err != nil {
			t.Fatal(err)
		}
	}
	// A new berth on the same root directory.
	r, err = OpenRecords(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, intent, _ := r.lookup("absent:1", "sha256:x"); !intent {
		t.Error("the intent of an interrupted pull is not seen after a restart")
	}
	now := metav1.NewTime(time.Unix(4000, 0).UTC())
	r.recover(klog.Background(), func(image string) (string, error) {
		if image == "present:1" {
			return "sha256:present", nil
		}
		return "", nil
	}, now)
	rec, intent, err := r.lookup("present:1", "sha256:present")
	if err != nil || intent || rec == nil || len(rec.CredentialMapping) != 0 {
		t.Errorf("present image: record %+v, intent %v, %v; want a record without credentials", rec, intent, err)
	}
	if _, intent, _ := r.lookup("absent:1", "sha256:x"); !intent {
		t.Error("the intent of an absent image was dropped")
	}
}

// TestRecordsPrune removes the records of images gone, unless updated
// since the image list was taken.
func TestRecordsPrune(t *testing.T) {
	r, err := OpenRecords(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	anyone := pullCredentials(nil)
	old, recent := time.Unix(1000, 0), time.Unix(3000, 0)
	for ref, at := range map[string]time.Time{"sha256:present": old, "sha256:gone": old, "sha256:gone-but-new": recent} {
		if err := r.remember("app:1", ref, &anyone, metav1.NewTime(at)); err != nil {
			t.Fatal(err)
		}
	}
	r.Prune(context.Background(), map[string]bool{"sha256:present": true}, time.Unix(2000, 0))
	for ref, want := range map[string]bool{"sha256:present": true, "sha256:gone": false, "sha256:gone-but-new": true} {
		if rec, _, err := r.lookup("app:1", ref); err != nil || (rec != nil) != want {
			t.Errorf("%s: record %v (%v), want kept %v", ref, rec, err, want)
		}
	}
}

// gcRuntime is a GCRuntime with images a, b (unused) and c (in use).
type gcRuntime struct{ removed []string }

func (g *gcRuntime) ImageList(context.Context) ([]*runtimeapi.Image, error) {
	var out []*runtimeapi.Image
	for _, id := range []string{"a", "b", "c"} {
		if !slices.Contains(g.removed, id) {
			out = append(out, &runtimeapi.Image{Id: id, Size: 10})
		}
	}
	return out, nil
}

func (g *gcRuntime) RemoveImage(_ context.Context, id string) error {
	g.removed = append(g.removed, id)
	return nil
}

func (g *gcRuntime) ImagesInUse(context.Context) (map[string]bool, error) {
	return map[string]bool{"c": true}, nil
}

// TestGCAfterCollect: after a collection AfterCollect learns the images
// left and when the collection began.
func TestGCAfterCollect(t *testing.T) {
	rt := &gcRuntime{}
	clk := clocktesting.NewFakeClock(time.Unix(5000, 0))
	var present map[string]bool
	var began time.Time
	g := NewGC(GCOptions{Runtime: rt, Clock: clk,
		AfterCollect: func(_ context.Context, p map[string]bool, b time.Time) { present, began = p, b }})
	if err := g.DeleteUnusedImages(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(present, map[string]bool{"c": true}) || !began.Equal(clk.Now()) {
		t.Errorf("AfterCollect(%v, %v), want the in-use image c left at %v (removed %v)", present, began, clk.Now(), rt.removed)
	}
}
