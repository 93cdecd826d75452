package csi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

const (
	testNode   = "node1"
	testDriver = "hostpath.csi.test"
)

var allCaps = []csipb.NodeServiceCapability_RPC_Type{
	csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
	csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csipb.NodeServiceCapability_RPC_EXPAND_VOLUME,
}

type harness struct {
	m      *Manager
	client *fake.Clientset
	fd     *fakeDriver
	root   string
}

func newHarness(t *testing.T, fd *fakeDriver, objects ...any) *harness {
	t.Helper()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "node-uid", Labels: map[string]string{"zone": "a"}}}
	client := fake.NewClientset(node)
	for _, o := range objects {
		var err error
		switch o := o.(type) {
		case *storagev1.CSIDriver:
			_, err = client.StorageV1().CSIDrivers().Create(context.Background(), o, metav1.CreateOptions{})
		case *storagev1.VolumeAttachment:
			_, err = client.StorageV1().VolumeAttachments().Create(context.Background(), o, metav1.CreateOptions{})
		case *v1.PersistentVolumeClaim:
			_, err = client.CoreV1().PersistentVolumeClaims(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	m := New(Options{Client: client, RootDir: root, NodeName: testNode})
	if err := m.RegisterPlugin(testDriver, fd.serve(t), []string{"1.0.0"}); err != nil {
		t.Fatalf("RegisterPlugin: %v", err)
	}
	return &harness{m: m, client: client, fd: fd, root: root}
}

func testPod(uid string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + uid, Namespace: "ns", UID: types.UID(uid)},
		Spec: v1.PodSpec{ServiceAccountName: "sa"}}
}

func csiPV(handle string) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + handle},
		Spec: v1.PersistentVolumeSpec{
			AccessModes:  []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			MountOptions: []string{"noatime"},
			Capacity:     v1.ResourceList{v1.ResourceStorage: resource.MustParse("2Gi")},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: testDriver, VolumeHandle: handle, FSType: "ext4", VolumeAttributes: map[string]string{"k": "v"},
			}},
		},
	}
}

func noAttach(mutate ...func(*storagev1.CSIDriver)) *storagev1.CSIDriver {
	cd := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: testDriver}, Spec: storagev1.CSIDriverSpec{AttachRequired: ptr(false)}}
	for _, f := range mutate {
		f(cd)
	}
	return cd
}

func ptr[T any](v T) *T { return &v }

func TestRegisterPublishesNodeInfo(t *testing.T) {
	h := newHarness(t, &fakeDriver{caps: allCaps, nodeID: "nid", maxVols: 7, topology: map[string]string{"topology.test/node": "nid"}})
	ctx := context.Background()
	node, _ := h.client.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
	if got := node.Annotations[nodeIDAnnotation]; got != `{"hostpath.csi.test":"nid"}` {
		t.Errorf("node ID annotation = %q", got)
	}
	if node.Labels["topology.test/node"] != "nid" || node.Labels["zone"] != "a" {
		t.Errorf("labels = %v", node.Labels)
	}
	cn, err := h.client.StorageV1().CSINodes().Get(ctx, testNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cn.Spec.Drivers) != 1 || cn.Spec.Drivers[0].NodeID != "nid" || *cn.Spec.Drivers[0].Allocatable.Count != 7 ||
		strings.Join(cn.Spec.Drivers[0].TopologyKeys, ",") != "topology.test/node" {
		t.Errorf("CSINode drivers = %+v", cn.Spec.Drivers)
	}
	if cn.OwnerReferences[0].UID != "node-uid" {
		t.Errorf("CSINode owner = %+v", cn.OwnerReferences)
	}

	h.m.DeRegisterPlugin(testDriver, "/some/other.sock")
	if _, err := h.m.driver(testDriver); err != nil {
		t.Error("deregistration of another socket removed the driver")
	}
	h.m.DeRegisterPlugin(testDriver, h.m.drivers[testDriver].endpoint)
	if _, err := h.m.driver(testDriver); err == nil {
		t.Error("driver still registered")
	}
	cn, _ = h.client.StorageV1().CSINodes().Get(ctx, testNode, metav1.GetOptions{})
	node, _ = h.client.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
	if len(cn.Spec.Drivers) != 0 || node.Annotations[nodeIDAnnotation] != "" {
		t.Errorf("after deregistration: CSINode %+v, annotations %v", cn.Spec.Drivers, node.Annotations)
	}
}

func TestValidatePlugin(t *testing.T) {
	m := New(Options{NodeName: testNode})
	for _, bad := range [][]string{nil, {"0.3.0"}, {"2.0.0"}, {"x"}} {
		if err := m.ValidatePlugin("d", "/s", bad); err == nil {
			t.Errorf("versions %q accepted", bad)
		}
	}
	if err := m.ValidatePlugin("d", "/s", []string{"0.3.0", "1.2.0"}); err != nil {
		t.Errorf("1.2.0: %v", err)
	}
}

func TestPersistentStagePublishTeardown(t *testing.T) {
	h := newHarness(t, &fakeDriver{caps: allCaps, nodeID: "nid"}, noAttach(func(cd *storagev1.CSIDriver) {
		cd.Spec.PodInfoOnMount = ptr(true)
	}))
	ctx := context.Background()
	pv := csiPV("h1")
	podA, podB := testPod("a"), testPod("b")

	target, ownFSGroup, err := h.m.SetUpPersistent(ctx, podA, "data", nil, pv, false)
	if err != nil {
		t.Fatalf("SetUpPersistent: %v", err)
	}
	wantTarget := filepath.Join(h.root, "pods", "a", "volumes", "kubernetes.io~csi", "pv-h1", "mount")
	if target != wantTarget {
		t.Errorf("target = %s, want %s", target, wantTarget)
	}
	if ownFSGroup {
		t.Error("no fsGroup in the pod: nothing to apply")
	}
	stage := h.fd.lastReq("NodeStageVolume").(*csipb.NodeStageVolumeRequest)
	staging := h.m.stagingPath(testDriver, "h1")
	if stage.StagingTargetPath != staging || stage.VolumeId != "h1" || stage.VolumeContext["k"] != "v" ||
		stage.VolumeCapability.GetMount().FsType != "ext4" || stage.VolumeCapability.GetMount().MountFlags[0] != "noatime" ||
		stage.VolumeCapability.AccessMode.Mode != csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER {
		t.Errorf("NodeStageVolume request = %v", stage)
	}
	if !strings.Contains(staging, filepath.Join("plugins", "kubernetes.io", "csi", testDriver)) || filepath.Base(staging) != "globalmount" {
		t.Errorf("staging path = %s", staging)
	}
	pub := h.fd.lastReq("NodePublishVolume").(*csipb.NodePublishVolumeRequest)
	if pub.StagingTargetPath != staging || pub.TargetPath != target || pub.VolumeContext["csi.storage.k8s.io/pod.name"] != "p-a" ||
		pub.VolumeContext["csi.storage.k8s.io/ephemeral"] != "false" || pub.VolumeContext["k"] != "v" {
		t.Errorf("NodePublishVolume request = %v", pub)
	}
	var data map[string]string
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(target), "vol_data.json"))
	_ = json.Unmarshal(b, &data)
	if data["volumeHandle"] != "h1" || data["driverName"] != testDriver || data["specVolID"] != "pv-h1" || data["volumeLifecycleMode"] != "Persistent" {
		t.Errorf("vol_data.json = %s", b)
	}

	// A second pod shares the staged volume.
	if _, _, err := h.m.SetUpPersistent(ctx, podB, "data", nil, pv, true); err != nil {
		t.Fatal(err)
	}
	if pub := h.fd.lastReq("NodePublishVolume").(*csipb.NodePublishVolumeRequest); !pub.Readonly {
		t.Error("read-only claim published read-write")
	}

	stats := h.m.PodVolumeStats(ctx, "a")
	if len(stats) != 1 || stats[0].Name != "data" || *stats[0].UsedBytes != 40 || *stats[0].InodesFree != 7 {
		t.Errorf("stats = %+v", stats)
	}

	if err := h.m.TearDownPod(ctx, "a"); err != nil {
		t.Fatalf("TearDownPod(a): %v", err)
	}
	if n := h.fd.callCount("NodeUnstageVolume"); n != 0 {
		t.Errorf("unstaged while pod b uses the volume (%d calls)", n)
	}
	if _, err := os.Stat(filepath.Dir(target)); !os.IsNotExist(err) {
		t.Errorf("pod a's volume dir left: %v", err)
	}
	if len(h.m.PodVolumeStats(ctx, "a")) != 0 {
		t.Error("stats of a torn down pod")
	}
	if err := h.m.TearDownPod(ctx, "b"); err != nil {
		t.Fatalf("TearDownPod(b): %v", err)
	}
	if n := h.fd.callCount("NodeUnstageVolume"); n != 1 {
		t.Errorf("NodeUnstageVolume calls = %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Dir(staging)); !os.IsNotExist(err) {
		t.Errorf("staging dir left: %v", err)
	}
	// Idempotent.
	if err := h.m.TearDownPod(ctx, "b"); err != nil || h.fd.callCount("NodeUnpublishVolume") != 2 {
		t.Errorf("second teardown: %v, %d unpublish calls", err, h.fd.callCount("NodeUnpublishVolume"))
	}
}

func TestTeardownFromDiskAfterRestart(t *testing.T) {
	fd := &fakeDriver{caps: allCaps, nodeID: "nid"}
	h := newHarness(t, fd, noAttach())
	ctx := context.Background()
	if _, _, err := h.m.SetUpPersistent(ctx, testPod("a"), "data", nil, csiPV("h1"), false); err != nil {
		t.Fatal(err)
	}
	// A new manager (berth restarted) knows nothing but the disk; the
	// driver is not registered yet.
	m2 := New(Options{Client: h.client, RootDir: h.root, NodeName: testNode})
	if err := m2.TearDownPod(ctx, "a"); err == nil || !strings.Contains(err.Error(), "not found in the list of registered CSI drivers") {
		t.Fatalf("teardown without the driver: %v", err)
	}
	if err := m2.RegisterPlugin(testDriver, h.m.drivers[testDriver].endpoint, []string{"1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if err := m2.TearDownPod(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if fd.callCount("NodeUnpublishVolume") != 1 || fd.callCount("NodeUnstageVolume") != 1 {
		t.Errorf("calls = %v", fd.calls)
	}
}

func TestNoStageCapability(t *testing.T) {
	h := newHarness(t, &fakeDriver{nodeID: "nid"}, noAttach())
	ctx := context.Background()
	if _, _, err := h.m.SetUpPersistent(ctx, testPod("a"), "data", nil, csiPV("h1"), false); err != nil {
		t.Fatal(err)
	}
	if h.fd.callCount("NodeStageVolume") != 0 {
		t.Error("staged without STAGE_UNSTAGE_VOLUME")
	}
	if pub := h.fd.lastReq("NodePublishVolume").(*csipb.NodePublishVolumeRequest); pub.StagingTargetPath != "" {
		t.Errorf("staging path %q given", pub.StagingTargetPath)
	}
	if len(h.m.PodVolumeStats(ctx, "a")) != 0 {
		t.Error("stats asked of a driver without GET_VOLUME_STATS")
	}
	if err := h.m.TearDownPod(ctx, "a"); err != nil || h.fd.callCount("NodeUnstageVolume") != 0 {
		t.Errorf("teardown: %v, calls %v", err, h.fd.calls)
	}
}

func TestAttachRequired(t *testing.T) {
	pv := csiPV("h1")
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: attachmentName("h1", testDriver, testNode)}}
	// No CSIDriver object: attach is required.
	h := newHarness(t, &fakeDriver{caps: allCaps, nodeID: "nid"}, va)
	ctx := context.Background()
	if _, _, err := h.m.SetUpPersistent(ctx, testPod("a"), "data", nil, pv, false); err == nil || !strings.Contains(err.Error(), "is not attached") {
		t.Fatalf("not attached yet: %v", err)
	}
	if h.fd.callCount("NodeStageVolume") != 0 {
		t.Error("staged before the attachment")
	}
	va.Status = storagev1.VolumeAttachmentStatus{Attached: true, AttachmentMetadata: map[string]string{"dev": "/dev/x"}}
	if _, err := h.client.StorageV1().VolumeAttachments().Update(ctx, va, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.m.SetUpPersistent(ctx, testPod("a"), "data", nil, pv, false); err != nil {
		t.Fatal(err)
	}
	if pub := h.fd.lastReq("NodePublishVolume").(*csipb.NodePublishVolumeRequest); pub.PublishContext["dev"] != "/dev/x" {
		t.Errorf("publish context = %v", pub.PublishContext)
	}
}

func TestInline(t *testing.T) {
	vol := &v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{CSI: &v1.CSIVolumeSource{
		Driver: testDriver, VolumeAttributes: map[string]string{"size": "1"}, FSType: ptr("ext4"),
	}}}
	ctx := context.Background()
	t.Run("persistent-only driver", func(t *testing.T) {
		h := newHarness(t, &fakeDriver{caps: allCaps, nodeID: "nid"}, noAttach())
		if _, _, err := h.m.SetUpInline(ctx, testPod("a"), vol); err == nil || !strings.Contains(err.Error(), `volume mode "Ephemeral" not supported`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ephemeral driver", func(t *testing.T) {
		h := newHarness(t, &fakeDriver{caps: allCaps, nodeID: "nid"}, noAttach(func(cd *storagev1.CSIDriver) {
			cd.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}
			cd.Spec.PodInfoOnMount = ptr(true)
			cd.Spec.FSGroupPolicy = ptr(storagev1.FileFSGroupPolicy)
		}))
		pod := testPod("a")
		pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr(int64(1000))}
		target, ownFSGroup, err := h.m.SetUpInline(ctx, pod, vol)
		if err != nil {
			t.Fatal(err)
		}
		if !ownFSGroup {
			t.Error("fsGroupPolicy File: berth applies the fsGroup")
		}
		if filepath.Base(filepath.Dir(target)) != "scratch" || h.fd.callCount("NodeStageVolume") != 0 {
			t.Errorf("target %s, calls %v", target, h.fd.calls)
		}
		pub := h.fd.lastReq("NodePublishVolume").(*csipb.NodePublishVolumeRequest)
		if pub.VolumeId != ephemeralHandle("a", "scratch") || pub.VolumeContext["csi.storage.k8s.io/ephemeral"] != "true" || pub.VolumeContext["size"] != "1" {
			t.Errorf("publish = %v", pub)
		}
		if err := h.m.TearDownPod(ctx, "a"); err != nil || h.fd.callCount("NodeUnpublishVolume") != 1 || h.fd.callCount("NodeUnstageVolume") != 0 {
			t.Errorf("teardown: %v, calls %v", err, h.fd.calls)
		}
	})
}

func TestExpandOnMount(t *testing.T) {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"},
		Status: v1.PersistentVolumeClaimStatus{
			Capacity:                  v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AllocatedResourceStatuses: map[v1.ResourceName]v1.ClaimResourceStatus{v1.ResourceStorage: v1.PersistentVolumeClaimNodeResizePending},
			Conditions:                []v1.PersistentVolumeClaimCondition{{Type: v1.PersistentVolumeClaimFileSystemResizePending, Status: v1.ConditionTrue}},
		},
	}
	h := newHarness(t, &fakeDriver{caps: allCaps, nodeID: "nid"}, noAttach(), pvc)
	ctx := context.Background()
	if _, _, err := h.m.SetUpPersistent(ctx, testPod("a"), "data", pvc, csiPV("h1"), false); err != nil {
		t.Fatal(err)
	}
	req, ok := h.fd.lastReq("NodeExpandVolume").(*csipb.NodeExpandVolumeRequest)
	if !ok || req.CapacityRange.RequiredBytes != 2<<30 || req.StagingTargetPath == "" {
		t.Fatalf("NodeExpandVolume = %v", req)
	}
	got, _ := h.client.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "c", metav1.GetOptions{})
	if q := got.Status.Capacity[v1.ResourceStorage]; q.Cmp(resource.MustParse("2Gi")) != 0 || len(got.Status.AllocatedResourceStatuses) != 0 || len(got.Status.Conditions) != 0 {
		t.Errorf("claim status = %+v", got.Status)
	}
}

func TestFSGroupApplies(t *testing.T) {
	rwo := []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	rwx := []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}
	p, e := storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral
	tests := []struct {
		name           string
		hasFSGroup, ro bool
		policy         storagev1.FSGroupPolicy
		fsType         string
		mode           storagev1.VolumeLifecycleMode
		access         []v1.PersistentVolumeAccessMode
		want           bool
	}{
		{"no fsGroup", false, false, storagev1.FileFSGroupPolicy, "ext4", p, rwo, false},
		{"read-only", true, true, storagev1.FileFSGroupPolicy, "ext4", p, rwo, false},
		{"None", true, false, storagev1.NoneFSGroupPolicy, "ext4", p, rwo, false},
		{"File without fsType", true, false, storagev1.FileFSGroupPolicy, "", p, rwx, true},
		{"default without fsType", true, false, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy, "", p, rwo, false},
		{"default RWO", true, false, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy, "ext4", p, rwo, true},
		{"default RWX", true, false, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy, "ext4", p, rwx, false},
		{"default inline", true, false, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy, "ext4", e, nil, true},
	}
	for _, tc := range tests {
		if got := fsGroupApplies(tc.hasFSGroup, tc.ro, tc.policy, tc.fsType, tc.mode, tc.access); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestExpansionSize(t *testing.T) {
	pv := csiPV("h") // 2Gi
	claim := func(status v1.ClaimResourceStatus, capacity string) *v1.PersistentVolumeClaim {
		c := &v1.PersistentVolumeClaim{Status: v1.PersistentVolumeClaimStatus{
			Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse(capacity)},
		}}
		if status != "" {
			c.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{v1.ResourceStorage: status}
		}
		return c
	}
	tests := []struct {
		name string
		pvc  *v1.PersistentVolumeClaim
		want bool
	}{
		{"no resize", claim("", "1Gi"), false},
		{"controller still resizing", claim(v1.PersistentVolumeClaimControllerResizeInProgress, "1Gi"), false},
		{"node resize pending", claim(v1.PersistentVolumeClaimNodeResizePending, "1Gi"), true},
		{"node resize in progress", claim(v1.PersistentVolumeClaimNodeResizeInProgress, "1Gi"), true},
		{"already the volume's size", claim(v1.PersistentVolumeClaimNodeResizePending, "2Gi"), false},
		{"infeasible", claim(v1.PersistentVolumeClaimNodeResizeInfeasible, "1Gi"), false},
	}
	for _, tc := range tests {
		size, ok := expansionSize(tc.pvc, pv)
		if ok != tc.want || (ok && size.Cmp(resource.MustParse("2Gi")) != 0) {
			t.Errorf("%s: got %v %v, want %v", tc.name, size.String(), ok, tc.want)
		}
	}
}

func TestAttachmentReady(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name    string
		va      storagev1.VolumeAttachment
		want    bool
		wantErr string
	}{
		{"attached", storagev1.VolumeAttachment{Status: storagev1.VolumeAttachmentStatus{Attached: true}}, true, ""},
		{"not yet", storagev1.VolumeAttachment{}, false, ""},
		{"attach error", storagev1.VolumeAttachment{Status: storagev1.VolumeAttachmentStatus{AttachError: &storagev1.VolumeError{Message: "no disk"}}}, false, "no disk"},
		{"being deleted", storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: storagev1.VolumeAttachmentStatus{Attached: true}}, false, "being deleted"},
	}
	for _, tc := range tests {
		got, err := attachmentReady(&tc.va)
		if got != tc.want || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: got %v, %v", tc.name, got, err)
		}
	}
}
