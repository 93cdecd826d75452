package nodestatus

import (
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func status(conds ...*runtimeapi.RuntimeCondition) *runtimeapi.StatusResponse {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: conds}}
}

func rtCond(typ string, ok bool, reason, msg string) *runtimeapi.RuntimeCondition {
	return &runtimeapi.RuntimeCondition{Type: typ, Status: ok, Reason: reason, Message: msg}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestNextRuntimeState(t *testing.T) {
	handlers := []*runtimeapi.RuntimeHandler{
		{Name: "runc", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true, UserNamespaces: true}},
		{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true}},
		{Name: "kata"},
	}
	wantHandlers := []v1.NodeRuntimeHandler{
		{Name: "", Features: &v1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: ptrTo(true), UserNamespaces: ptrTo(false)}},
		{Name: "kata", Features: &v1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: ptrTo(false), UserNamespaces: ptrTo(false)}},
		{Name: "runc", Features: &v1.NodeRuntimeHandlerFeatures{RecursiveReadOnlyMounts: ptrTo(true), UserNamespaces: ptrTo(true)}},
	}
	known := runtimeState{handlers: wantHandlers[:1], features: &v1.NodeFeatures{SupplementalGroupsPolicy: ptrTo(true)}}

	tests := []struct {
		name         string
		prev         runtimeState
		resp         *runtimeapi.StatusResponse
		runtimeErr   string
		networkErr   string
		wantHandlers []v1.NodeRuntimeHandler
		wantFeatures *v1.NodeFeatures
	}{
		{
			name: "containerd 1.6, ready: no handlers, no features",
			prev: newRuntimeState(),
			resp: status(rtCond("RuntimeReady", true, "", ""), rtCond("NetworkReady", true, "", "")),
		},
		{
			name:       "CNI not initialised (empty conf dir)",
			prev:       newRuntimeState(),
			resp:       status(rtCond("RuntimeReady", true, "", ""), rtCond("NetworkReady", false, "NetworkPluginNotReady", "Network plugin returns error: cni plugin not initialized")),
			networkErr: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
		},
		{
			name:       "no conditions at all",
			prev:       newRuntimeState(),
			resp:       status(),
			runtimeErr: "container runtime not ready: <nil>",
			networkErr: "container runtime network not ready: <nil>",
		},
		{
			name:         "runtime not ready: handlers and features kept from before",
			prev:         known,
			resp:         &runtimeapi.StatusResponse{Status: status(rtCond("RuntimeReady", false, "Starting", "loading plugins"), rtCond("NetworkReady", true, "", "")).Status, RuntimeHandlers: handlers},
			runtimeErr:   "container runtime not ready: RuntimeReady=false reason:Starting message:loading plugins",
			wantHandlers: known.handlers,
			wantFeatures: known.features,
		},
		{
			name: "containerd 2: handlers sorted, features",
			prev: newRuntimeState(),
			resp: &runtimeapi.StatusResponse{
				Status:          status(rtCond("RuntimeReady", true, "", ""), rtCond("NetworkReady", true, "", "")).Status,
				RuntimeHandlers: handlers,
				Features:        &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
			},
			wantHandlers: wantHandlers,
			wantFeatures: &v1.NodeFeatures{SupplementalGroupsPolicy: ptrTo(true)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nextRuntimeState(tt.prev, tt.resp)
			if errString(got.runtimeErr) != tt.runtimeErr || errString(got.networkErr) != tt.networkErr {
				t.Errorf("errors %q / %q, want %q / %q", errString(got.runtimeErr), errString(got.networkErr), tt.runtimeErr, tt.networkErr)
			}
			if !apiequality.Semantic.DeepEqual(got.handlers, tt.wantHandlers) || !apiequality.Semantic.DeepEqual(got.features, tt.wantFeatures) {
				t.Errorf("handlers %+v features %+v, want %+v %+v", got.handlers, got.features, tt.wantHandlers, tt.wantFeatures)
			}
		})
	}
}

// The Ready condition and the status fields the runtime state drives.
func TestSetStatusFromRuntimeState(t *testing.T) {
	cfg, f := testConfig(), testFacts()
	f.runtime = newRuntimeState() // the runtime has not answered yet
	node := initialNode(cfg, f)
	if r := readyCondition(node); r.Status != v1.ConditionFalse || r.Reason != "KubeletNotReady" || r.Message != "network state unknown" {
		t.Errorf("before the runtime answered: Ready %+v", r)
	}

	f.runtime = nextRuntimeState(f.runtime, status(rtCond("RuntimeReady", true, "", ""), rtCond("NetworkReady", false, "NetworkPluginNotReady", "cni plugin not initialized")))
	f.health = errors.New("PLEG is not healthy: pleg has yet to be successful")
	setStatus(node, cfg, f)
	want := "[PLEG is not healthy: pleg has yet to be successful, container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized]"
	if r := readyCondition(node); r.Status != v1.ConditionFalse || r.Message != want {
		t.Errorf("Ready %+v, want message %q", r, want)
	}

	f.health = nil
	f.runtime = runtimeState{features: &v1.NodeFeatures{SupplementalGroupsPolicy: ptrTo(true)}, handlers: []v1.NodeRuntimeHandler{{Name: "runc"}}}
	setStatus(node, cfg, f)
	if r := readyCondition(node); r.Status != v1.ConditionTrue || r.Reason != "KubeletReady" {
		t.Errorf("Ready %+v", r)
	}
	if !apiequality.Semantic.DeepEqual(node.Status.Features, f.runtime.features) || len(node.Status.RuntimeHandlers) != 1 {
		t.Errorf("features %+v handlers %+v", node.Status.Features, node.Status.RuntimeHandlers)
	}
	// A runtime that stops reporting features leaves them as they were.
	f.runtime.features = nil
	setStatus(node, cfg, f)
	if node.Status.Features == nil {
		t.Error("features dropped")
	}
}

// The controller asks the runtime's Status at every update: a CNI that is
// not initialised keeps the node NotReady, and the node turns Ready once
// the runtime reports the network ready, as upstream's updateRuntimeUp.
func TestControllerNetworkReadiness(t *testing.T) {
	e := newEnv(t, nil)
	e.runtime.setStatus(status(rtCond("RuntimeReady", true, "", ""), rtCond("NetworkReady", false, "NetworkPluginNotReady", "Network plugin returns error: cni plugin not initialized")))
	e.start()
	e.events.waitFor(t, "wait:status", 1)
	r := readyCondition(e.node())
	if r.Status != v1.ConditionFalse || r.Message != "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized" {
		t.Fatalf("Ready = %+v", r)
	}
	e.runtime.setStatus(readyStatus())
	e.tick()
	if r := readyCondition(e.node()); r.Status != v1.ConditionTrue {
		t.Errorf("Ready after the network came up = %+v", r)
	}
}
