package dra

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
	"k8s.io/utils/ptr"
)

const driver = "test-driver.cdi.k8s.io"

// fakeDriver is a DRA kubelet plugin served over a real gRPC socket: it
// records each call and returns one CDI device per claim.
type fakeDriver struct {
	drapb.UnimplementedDRAPluginServer
	mu                 sync.Mutex
	prepared, released []string // claim names, in call order
	fail               string   // a per-claim error to return
}

func (f *fakeDriver) NodePrepareResources(_ context.Context, req *drapb.NodePrepareResourcesRequest) (*drapb.NodePrepareResourcesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &drapb.NodePrepareResourcesResponse{Claims: map[string]*drapb.NodePrepareResourceResponse{}}
	for _, c := range req.Claims {
		if f.fail != "" {
			resp.Claims[c.Uid] = &drapb.NodePrepareResourceResponse{Error: f.fail}
			continue
		}
		f.prepared = append(f.prepared, c.Name)
		resp.Claims[c.Uid] = &drapb.NodePrepareResourceResponse{Devices: []*drapb.Device{{
			RequestNames: []string{"req"}, PoolName: "node", DeviceName: "device-00",
			CdiDeviceIds: []string{driver + "/test=claim-" + c.Uid},
		}}}
	}
	return resp, nil
}

func (f *fakeDriver) NodeUnprepareResources(_ context.Context, req *drapb.NodeUnprepareResourcesRequest) (*drapb.NodeUnprepareResourcesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &drapb.NodeUnprepareResourcesResponse{Claims: map[string]*drapb.NodeUnprepareResourceResponse{}}
	for _, c := range req.Claims {
		f.released = append(f.released, c.Name)
		resp.Claims[c.Uid] = &drapb.NodeUnprepareResourceResponse{}
	}
	return resp, nil
}

func (f *fakeDriver) calls() (prepared, released []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slicesClone(f.prepared), slicesClone(f.released)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func serve(t *testing.T, f *fakeDriver) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "dra.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	drapb.RegisterDRAPluginServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return sock
}

type claimMap map[string]*resourceapi.ResourceClaim

func (c claimMap) GetResourceClaim(_ context.Context, ns, name string) (*resourceapi.ResourceClaim, error) {
	if cl, ok := c[ns+"/"+name]; ok {
		return cl, nil
	}
	return nil, fmt.Errorf("resourceclaims %q not found", name)
}

func testPod(uid, claimName string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-" + uid, Namespace: "ns", UID: types.UID(uid)},
		Spec: v1.PodSpec{
			ResourceClaims: []v1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr.To(claimName)}},
			Containers: []v1.Container{
				{Name: "with", Resources: v1.ResourceRequirements{Claims: []v1.ResourceClaim{{Name: "gpu"}}}},
				{Name: "without"},
			},
		},
	}
}

func testClaim(name string, reservedFor ...string) *resourceapi.ResourceClaim {
	c := &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Status: resourceapi.ResourceClaimStatus{Allocation: &resourceapi.AllocationResult{
			Devices: resourceapi.DeviceAllocationResult{Results: []resourceapi.DeviceRequestAllocationResult{
				{Request: "req", Driver: driver, Pool: "node", Device: "device-00"},
			}},
		}},
	}
	for _, uid := range reservedFor {
		c.Status.ReservedFor = append(c.Status.ReservedFor, resourceapi.ResourceClaimConsumerReference{Resource: "pods", Name: "pod-" + uid, UID: types.UID(uid)})
	}
	return c
}

func newTestManager(t *testing.T, dir string, claims claimMap, rec record.EventRecorder) *Manager {
	t.Helper()
	m, err := New(Options{StateDir: dir, Claims: claims, Recorder: rec, Logger: klog.Background()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.plugins.closeAll)
	return m
}

func TestPrepareShareUnprepare(t *testing.T) {
	ctx := context.Background()
	f := &fakeDriver{}
	sock := serve(t, f)
	dir := t.TempDir()
	claims := claimMap{"ns/shared": testClaim("shared", "a", "b")}
	m := newTestManager(t, dir, claims, nil)
	if err := m.Plugins().ValidatePlugin(driver, sock, []string{"v1.DRAPlugin"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Plugins().RegisterPlugin(driver, sock, []string{"v1.DRAPlugin", "v1beta1.DRAPlugin"}); err != nil {
		t.Fatal(err)
	}

	a, b := testPod("a", "shared"), testPod("b", "shared")
	for _, p := range []*v1.Pod{a, b, a} {
		if err := m.Prepare(ctx, p); err != nil {
			t.Fatalf("prepare %s: %v", p.Name, err)
		}
	}
	if prepared, _ := f.calls(); !reflect.DeepEqual(prepared, []string{"shared"}) {
		t.Errorf("NodePrepareResources for %v, want once for the shared claim", prepared)
	}
	ids, err := m.CDIDevices(b, &b.Spec.Containers[0])
	if err != nil || !reflect.DeepEqual(ids, []string{driver + "/test=claim-uid-shared"}) {
		t.Errorf("CDIDevices(with) = %v, %v", ids, err)
	}
	if ids, err := m.CDIDevices(b, &b.Spec.Containers[1]); err != nil || len(ids) != 0 {
		t.Errorf("CDIDevices(without) = %v, %v; want none", ids, err)
	}

	// The checkpoint is upstream's format and brings the claim back.
	restarted := newTestManager(t, dir, claims, nil)
	if got := restarted.claims["ns/shared"]; got == nil || got.PodUIDs.Len() != 2 || len(got.DriverState[driver].Devices) != 1 {
		t.Fatalf("claim after restart: %+v", got)
	}
	if ids, err := restarted.CDIDevices(a, &a.Spec.Containers[0]); err != nil || len(ids) != 1 {
		t.Errorf("CDIDevices after restart = %v, %v", ids, err)
	}

	if err := m.Unprepare(ctx, a.UID); err != nil {
		t.Fatal(err)
	}
	if _, released := f.calls(); len(released) != 0 {
		t.Errorf("NodeUnprepareResources for %v while pod b still uses the claim", released)
	}
	// b is gone while berth was down: the orphan clean-up unprepares it.
	if err := m.CleanupOrphans(ctx, func(uid types.UID) bool { return uid != "b" }); err != nil {
		t.Fatal(err)
	}
	if _, released := f.calls(); !reflect.DeepEqual(released, []string{"shared"}) {
		t.Errorf("NodeUnprepareResources for %v, want the shared claim once", released)
	}
	if err := m.Unprepare(ctx, b.UID); err != nil {
		t.Errorf("second unprepare: %v", err)
	}
	if states, err := readCheckpoint(dir); err != nil || len(states) != 0 {
		t.Errorf("checkpoint after the last pod: %v, %v", states, err)
	}
}

func TestPrepareWaitsAndReports(t *testing.T) {
	ctx := context.Background()
	f := &fakeDriver{}
	sock := serve(t, f)
	unallocated := testClaim("pending", "a")
	unallocated.Status.Allocation = nil
	templated := testPod("t", "x")
	templated.Spec.ResourceClaims[0] = v1.PodResourceClaim{Name: "gpu", ResourceClaimTemplateName: ptr.To("tmpl")}
	for _, tc := range []struct {
		name       string
		pod        *v1.Pod
		claims     claimMap
		register   bool
		driverFail string
		want       string
	}{
		{name: "claim not reserved for the pod", pod: testPod("a", "c"), claims: claimMap{"ns/c": testClaim("c", "other")}, register: true,
			want: "pod pod-a (a) is not allowed to use ResourceClaim c (uid-c)"},
		{name: "not allocated", pod: testPod("a", "pending"), claims: claimMap{"ns/pending": unallocated}, register: true,
			want: "ResourceClaim pending: not allocated"},
		{name: "claim from template not made yet", pod: templated, claims: claimMap{}, register: true,
			want: "ResourceClaim not created yet"},
		{name: "claim missing", pod: testPod("a", "nope"), claims: claimMap{}, register: true,
			want: "fetch ResourceClaim nope"},
		{name: "driver not registered", pod: testPod("a", "c"), claims: claimMap{"ns/c": testClaim("c", "a")},
			want: "DRA driver test-driver.cdi.k8s.io is not registered"},
		{name: "driver fails", pod: testPod("a", "c"), claims: claimMap{"ns/c": testClaim("c", "a")}, register: true, driverFail: "no device",
			want: "NodePrepareResources failed for ResourceClaim c: no device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := record.NewFakeRecorder(10)
			m := newTestManager(t, t.TempDir(), tc.claims, rec)
			if tc.register {
				if err := m.Plugins().RegisterPlugin(driver, sock, []string{"v1.DRAPlugin"}); err != nil {
					t.Fatal(err)
				}
			}
			f.mu.Lock()
			f.fail = tc.driverFail
			f.mu.Unlock()
			err := m.Prepare(ctx, tc.pod)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			ev := <-rec.Events
			if !strings.HasPrefix(ev, "Warning FailedPrepareDynamicResources Failed to prepare dynamic resources: ") || !strings.Contains(ev, tc.want) {
				t.Errorf("event %q", ev)
			}
		})
	}
}

func TestValidatePlugin(t *testing.T) {
	p := newPlugins(klog.Background(), nil)
	for versions, want := range map[string]string{
		"v1.DRAPlugin":      "",
		"v1beta1.DRAPlugin": "",
		"1.0.0":             "none of services supported by the plugin",
		"":                  "empty list",
	} {
		var vs []string
		if versions != "" {
			vs = []string{versions}
		}
		err := p.ValidatePlugin(driver, "/x.sock", vs)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("ValidatePlugin(%q) = %v, want %q", versions, err, want)
		}
	}
}

func TestCorruptCheckpointRefused(t *testing.T) {
	dir := t.TempDir()
	if err := writeCheckpoint(dir, []claimState{{ClaimName: "c", Namespace: "ns"}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, checkpointFile)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), `\"c\"`, `\"d\"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StateDir: dir, Logger: klog.Background()}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("New with a corrupt checkpoint: %v", err)
	}
}

func TestChooseServiceFollowsThePluginsOrder(t *testing.T) {
	for _, tc := range []struct {
		versions []string
		want     string
	}{
		{[]string{"v1.DRAPlugin", "v1beta1.DRAPlugin"}, "v1.DRAPlugin"},
		{[]string{"v1beta1.DRAPlugin", "v1.DRAPlugin"}, "v1beta1.DRAPlugin"},
		{[]string{"v2.DRAPlugin", "v1beta1.DRAPlugin"}, "v1beta1.DRAPlugin"},
	} {
		if got, err := chooseService(tc.versions); err != nil || got != tc.want {
			t.Errorf("chooseService(%v) = %q, %v; want %q", tc.versions, got, err, tc.want)
		}
	}
}
