package runtime

import (
	"context"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/plan"
)

// fakeUserns hands every pod the block at 65536 and records releases.
type fakeUserns struct{ released []types.UID }

var podUserns = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
	Uids: []*runtimeapi.IDMapping{{HostId: 65536, Length: 65536}}, Gids: []*runtimeapi.IDMapping{{HostId: 65536, Length: 65536}}}

func (f *fakeUserns) GetOrCreate(types.UID) (*runtimeapi.UserNamespace, error) { return podUserns, nil }
func (f *fakeUserns) Release(uid types.UID)                                    { f.released = append(f.released, uid) }

func TestUserNamespace(t *testing.T) {
	node := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	tests := []struct {
		name      string
		hostUsers *bool
		supports  bool
		ns        UserNamespaces
		want      *runtimeapi.UserNamespace
		wantErr   string
	}{
		{name: "unset: the node's", want: node},
		{name: "hostUsers true: the node's", hostUsers: ptrTo(true), want: node, ns: &fakeUserns{}},
		{name: "hostUsers false, runtime without support", hostUsers: ptrTo(false), ns: &fakeUserns{},
			wantErr: "can't set `spec.hostUsers: false`, runtime does not support user namespaces"},
		{name: "hostUsers false, runtime with support, no ID range", hostUsers: ptrTo(false), supports: true,
			wantErr: "can't set `spec.hostUsers: false`: berth has no user namespace ID range"},
		{name: "hostUsers false, runtime with support", hostUsers: ptrTo(false), supports: true, ns: &fakeUserns{}, want: podUserns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := fakePod()
			pod.Spec.HostUsers = tt.hostUsers
			got, err := userNamespace(pod, tt.supports, tt.ns)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || got != nil {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	// However the configs are reached, a pod with hostUsers: false never
	// gets the node's user namespace.
	pod := fakePod()
	pod.Spec.HostUsers = ptrTo(false)
	for _, userns := range []*runtimeapi.UserNamespace{nil, node} {
		if _, _, err := sandboxConfig(pod, 0, testNode(), &runtimeapi.DNSConfig{}, userns); err != errNoUserNamespaces {
			t.Errorf("sandbox config with %v: %v", userns, err)
		}
		if _, err := containerSecurityContext(pod, &pod.Spec.Containers[0], imageUser{}, userns, testNode()); err != errNoUserNamespaces {
			t.Errorf("container config with %v: %v", userns, err)
		}
	}
}

// A pod with hostUsers: false on a runtime without user namespaces gets no
// sandbox: upstream's event, and the runtime is only asked about its
// handlers.
func TestSyncPodRefusesUserNamespaceWithoutSupport(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	pod.Spec.HostUsers = ptrTo(false)
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "runtime does not support user namespaces") {
		t.Errorf("SyncPod = %+v, want the refusal", res)
	}
	if got, want := e.calls(), []string{"Status"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	if got, want := e.events(), []string{"Warning FailedCreatePodSandBox Failed to create pod sandbox: can't set `spec.hostUsers: false`, runtime does not support user namespaces"}; !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

// On a runtime with user namespaces the sandbox and every container get
// the pod's mapping, the container's mounts are ID-mapped, and removing
// the pod releases the IDs.
func TestSyncPodUserNamespace(t *testing.T) {
	e := newEnv(t)
	ns := &fakeUserns{}
	e.m.opts.UserNamespaces = ns
	e.rs.handlers = []*runtimeapi.RuntimeHandler{{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{UserNamespaces: true}}}
	pod := fakePod()
	pod.Spec.HostUsers = ptrTo(false)
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
	if res.Err != nil || len(res.Waiting) > 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	st := e.status(pod)
	if len(e.rs.sandboxConfigs) != 1 {
		t.Fatalf("%d sandboxes run", len(e.rs.sandboxConfigs))
	}
	checkProto(t, "sandbox user namespace", podUserns, e.rs.sandboxConfigs[0].GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	cfg := e.rs.config(st.Containers[0].ID)
	checkProto(t, "container user namespace", podUserns, cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions())
	if len(cfg.Mounts) == 0 {
		t.Fatal("the container has no mounts")
	}
	for _, m := range cfg.Mounts {
		if len(m.UidMappings) != 1 || m.UidMappings[0].HostId != 65536 || len(m.GidMappings) != 1 {
			t.Errorf("mount %s not ID-mapped: %v %v", m.ContainerPath, m.UidMappings, m.GidMappings)
		}
	}
	if err := e.m.RemovePod(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ns.released, []types.UID{pod.UID}) {
		t.Errorf("released %v, want the pod's", ns.released)
	}
}

// The user namespace support asked about is that of the pod's runtime
// handler: a class whose handler has none is refused even where the
// default handler has it, and the other way round.
func TestSyncPodUserNamespaceOfTheHandler(t *testing.T) {
	for _, tt := range []struct {
		name      string
		class     *string
		wantError bool
	}{
		{name: "default handler supports them", wantError: false},
		{name: "class's handler does not", class: ptrTo("plain"), wantError: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.m.opts.UserNamespaces = &fakeUserns{}
			e.m.opts.RuntimeClasses = fakeRuntimeClasses{"plain": "plain-handler"}
			e.rs.handlers = []*runtimeapi.RuntimeHandler{
				{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{UserNamespaces: true}},
				{Name: "plain-handler", Features: &runtimeapi.RuntimeHandlerFeatures{}},
			}
			pod := fakePod()
			pod.Spec.HostUsers = ptrTo(false)
			pod.Spec.RuntimeClassName = tt.class
			res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: plan.NoInit, ContainersToStart: []int{0}})
			refused := res.Err != nil && strings.Contains(res.Err.Error(), "runtime does not support user namespaces")
			if refused != tt.wantError {
				t.Errorf("SyncPod = %+v, want refused %v", res, tt.wantError)
			}
		})
	}
}
