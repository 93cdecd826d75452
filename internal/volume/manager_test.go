package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/berth-dev/berth/internal/objects"
)

// The objects manager is what the lead wires in.
var _ Objects = (*objects.Manager)(nil)

func TestUnsupportedVolumeTypes(t *testing.T) {
	cases := []struct {
		vol  v1.Volume
		want string
	}{
		{v1.Volume{Name: "x", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{Driver: "d"}}}, `volume type "csi" is not supported by berth yet`},
		{v1.Volume{Name: "x", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/"}}}, `volume type "nfs" is not supported by berth yet`},
	}
	for _, tc := range cases {
		h := newHarness(t)
		err := h.m.SetUp(context.Background(), newPod("u1", tc.vol))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetUp = %v; want %q", err, tc.want)
		}
		if e := h.event(); e != `Warning FailedMount MountVolume.SetUp failed for volume "x" : `+tc.want {
			t.Errorf("event = %q", e)
		}
	}
}

func TestUnmountedVolumesAreNotSetUp(t *testing.T) {
	h := newHarness(t)
	pod := newPod("u1", emptyDir("used", "", ""))
	// A volume no container mounts: upstream leaves it alone, so a missing
	// ConfigMap behind it does not hold the pod.
	pod.Spec.Volumes = append(pod.Spec.Volumes, configMapVolume("unused", "missing"))
	h.mustSetUp(pod)
	if _, ok := h.m.HostPath(pod.UID, "unused"); ok {
		t.Fatal("an unmounted volume was set up")
	}
	if !h.objects.registered[pod.UID] {
		t.Fatal("SetUp did not register the pod's objects")
	}
}

func TestObjectChangeRewritesVolume(t *testing.T) {
	h := newHarness(t)
	h.objects.setConfigMap("app", map[string]string{"k": "1"})
	h.objects.setSecret("creds", map[string][]byte{"p": []byte("1")})
	pod := newPod("u1", configMapVolume("config", "app"), secretVolume("creds", "creds", 0o644))
	h.mustSetUp(pod)
	h.run()

	h.objects.setConfigMap("app", map[string]string{"k": "2", "new": "x"})
	h.m.ObjectChanged("ConfigMap", "ns", "app")
	h.waitChange(pod.UID)
	if got := h.read(pod, "config", "k"); got != "2" {
		t.Fatalf("k after change = %q; want 2", got)
	}
	if got := h.read(pod, "config", "new"); got != "x" {
		t.Fatalf("new key after change = %q", got)
	}

	// A change to an object of another namespace touches nothing.
	h.objects.setSecret("creds", map[string][]byte{"p": []byte("2")})
	h.m.ObjectChanged("Secret", "other", "creds")
	h.m.ObjectChanged("Secret", "ns", "creds")
	h.waitChange(pod.UID)
	if got := h.read(pod, "creds", "p"); got != "2" {
		t.Fatalf("p after change = %q; want 2", got)
	}

	// Deleted: the files stay, one event says why.
	h.objects.mu.Lock()
	delete(h.objects.configMaps, "ns/app")
	h.objects.mu.Unlock()
	h.m.ObjectChanged("ConfigMap", "ns", "app")
	h.m.ObjectChanged("ConfigMap", "ns", "app")
	h.objects.setSecret("creds", map[string][]byte{"p": []byte("3")})
	h.m.ObjectChanged("Secret", "ns", "creds") // a later change shows the loop went on
	h.waitChange(pod.UID)
	if got := h.read(pod, "config", "k"); got != "2" {
		t.Fatalf("k after delete = %q; want the last content", got)
	}
	var events []string
	for e := h.event(); e != ""; e = h.event() {
		events = append(events, e)
	}
	if len(events) != 1 || events[0] != `Warning FailedMount MountVolume.SetUp failed for volume "config" : configmap "app" not found` {
		t.Fatalf("events = %q; want one FailedMount", events)
	}
}

func TestObjectChangeWakesWaitingPod(t *testing.T) {
	h := newHarness(t)
	pod := newPod("u1", configMapVolume("config", "app"))
	if err := h.m.SetUp(context.Background(), pod); err == nil {
		t.Fatal("SetUp with a missing ConfigMap succeeded")
	}
	h.run()
	h.objects.setConfigMap("app", map[string]string{"k": "1"})
	h.m.ObjectChanged("ConfigMap", "ns", "app")
	h.waitChange(pod.UID) // the worker retries at once
	h.mustSetUp(pod)
	if got := h.read(pod, "config", "k"); got != "1" {
		t.Fatalf("k = %q", got)
	}
}

func TestTearDownKeepsOtherFiles(t *testing.T) {
	h := newHarness(t)
	h.objects.setConfigMap("app", map[string]string{"k": "1"})
	pod := newPod("u1", configMapVolume("config", "app"), emptyDir("scratch", "", ""))
	h.mustSetUp(pod)
	// The runtime's own file in the pod directory.
	hosts := filepath.Join(h.root, "pods/u1/etc-hosts")
	if err := os.WriteFile(hosts, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"volumes", "plugins"} {
		if _, err := os.Stat(filepath.Join(h.root, "pods/u1", sub)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", sub, err)
		}
	}
	if _, err := os.Stat(hosts); err != nil {
		t.Errorf("TearDown removed a file that is not a volume: %v", err)
	}
	if h.objects.registered[pod.UID] {
		t.Error("TearDown did not unregister the pod's objects")
	}
	// Idempotent.
	if err := h.m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupOrphans(t *testing.T) {
	requireRoot(t)
	h := newHarness(t)
	h.objects.setSecret("s", map[string][]byte{"k": []byte("v")})
	live := newPod("live", secretVolume("s", "s", 0o644))
	h.mustSetUp(live)
	// Left by a berth that died: a pod with a tmpfs volume, one with plain
	// files, one the caller still wants.
	orphanVol := filepath.Join(h.root, "pods/orphan/volumes/kubernetes.io~secret/s")
	if err := os.MkdirAll(orphanVol, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(orphanVol, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphanVol, "k"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.root, "pods/plain/containers/c"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.root, "pods/wanted/volumes"), 0o750); err != nil {
		t.Fatal(err)
	}
	keep := func(uid types.UID) bool { return uid == "wanted" }
	if err := h.m.CleanupOrphans(context.Background(), keep); err != nil {
		t.Fatal(err)
	}
	for uid, want := range map[string]bool{"orphan": false, "plain": false, "wanted": true, "live": true} {
		_, err := os.Stat(filepath.Join(h.root, "pods", uid))
		if got := err == nil; got != want {
			t.Errorf("pod dir %s exists = %v; want %v", uid, got, want)
		}
	}
	if mounts, _ := mountsUnder(filepath.Join(h.root, "pods/orphan")); len(mounts) != 0 {
		t.Errorf("orphan mounts left: %v", mounts)
	}
	// Nothing left to do, nothing to say.
	if err := h.m.CleanupOrphans(context.Background(), keep); err != nil {
		t.Fatal(err)
	}
}

// TestWithObjectsManager runs the volume manager on the real objects
// manager and a fake API: a ConfigMap edit reaches the file through the
// watch, ObjectChanged and Run.
func TestWithObjectsManager(t *testing.T) {
	client := fake.NewClientset(&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", ResourceVersion: "1"}, Data: map[string]string{"k": "1"}})
	watches := make(chan struct{}, 10)
	client.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(a.GetResource(), a.GetNamespace())
		watches <- struct{}{}
		return true, w, err
	})
	changes := make(chan types.UID, 10)
	objs := objects.New(objects.Options{Client: client})
	root := t.TempDir()
	vm := New(Options{Client: client, Objects: objs, RootDir: root, OnChange: func(uid types.UID) { changes <- uid }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { objs.Run(ctx, vm); done <- struct{}{} }()
	go func() { vm.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	pod := newPod("u1", configMapVolume("config", "app"))
	// SetUp registers the pod; Run may not have started the watch yet, in
	// which case the first read goes to the API.
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watches:
	case <-time.After(guard):
		t.Fatal("no watch started")
	}
	start := time.Now()
	if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", ResourceVersion: "2"}, Data: map[string]string{"k": "2"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(guard):
		t.Fatal("the ConfigMap change never reached the volume")
	}
	path, _ := vm.HostPath(pod.UID, "config")
	if b, err := os.ReadFile(filepath.Join(path, "k")); err != nil || string(b) != "2" {
		t.Fatalf("k = %q, %v; want 2", b, err)
	}
	t.Logf("ConfigMap change visible in the volume after %v", time.Since(start))
}

func TestSetUpKeepsStaleVolume(t *testing.T) {
	h := newHarness(t)
	h.objects.setConfigMap("app", map[string]string{"k": "1"})
	pod := newPod("u1", configMapVolume("config", "app"))
	h.mustSetUp(pod)
	h.objects.mu.Lock()
	delete(h.objects.configMaps, "ns/app")
	h.objects.mu.Unlock()
	// A running pod whose ConfigMap went away keeps syncing.
	h.mustSetUp(pod)
	h.mustSetUp(pod)
	if got := h.read(pod, "config", "k"); got != "1" {
		t.Fatalf("k = %q; want the last content", got)
	}
	var events []string
	for e := h.event(); e != ""; e = h.event() {
		events = append(events, e)
	}
	if len(events) != 1 {
		t.Fatalf("events = %q; want one FailedMount", events)
	}
}
