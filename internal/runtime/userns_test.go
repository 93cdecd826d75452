package runtime

import (
	"context"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/plan"
)

func TestUserNamespace(t *testing.T) {
	node := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	tests := []struct {
		name      string
		hostUsers *bool
		supports  bool
		want      *runtimeapi.UserNamespace
		wantErr   string
	}{
		{name: "unset: the node's", want: node},
		{name: "hostUsers true: the node's", hostUsers: ptrTo(true), want: node},
		{name: "hostUsers false, runtime without support", hostUsers: ptrTo(false),
			wantErr: "can't set `spec.hostUsers: false`, runtime does not support user namespaces"},
		{name: "hostUsers false, runtime with support", hostUsers: ptrTo(false), supports: true,
			wantErr: "can't set `spec.hostUsers: false`: berth does not allocate user namespace ID ranges yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := fakePod()
			pod.Spec.HostUsers = tt.hostUsers
			got, err := userNamespace(pod, tt.supports)
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
