package runtime

import (
	"context"
	"errors"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/plan"
)

// extrasFunc is a ContainerExtrasSource from a function.
type extrasFunc func(pod *v1.Pod, c *v1.Container) (ContainerExtras, error)

func (f extrasFunc) ContainerExtras(_ context.Context, pod *v1.Pod, c *v1.Container) (ContainerExtras, error) {
	return f(pod, c)
}

func TestContainerExtrasReachTheConfig(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	pod.Spec.InitContainers[0].Env = []v1.EnvVar{{Name: "SHARED", Value: "spec"}}
	devices := extrasFunc(func(_ *v1.Pod, c *v1.Container) (ContainerExtras, error) {
		return ContainerExtras{
			Env:         []ExtraEnv{{Name: "DEV", Value: "Dev-1"}, {Name: "SHARED", Value: "plugin"}},
			Mounts:      []ExtraMount{{ContainerPath: "/tmp/Dev-1", HostPath: "/tmp/Dev-1", ReadOnly: true}},
			Devices:     []ExtraDevice{{ContainerPath: "/dev/fake0", HostPath: "/dev/null", Permissions: "rw"}},
			Annotations: map[string]string{"example.com/dev": "Dev-1", container.AnnotationContainerRestartCount: "99"},
			CDIDevices:  []string{"example.com/resource=CDI-Dev-1"},
		}, nil
	})
	claims := extrasFunc(func(_ *v1.Pod, c *v1.Container) (ContainerExtras, error) {
		return ContainerExtras{CDIDevices: []string{"dra.example.com/gpu=gpu-0"}}, nil
	})
	e.m.opts.ContainerExtras = []ContainerExtrasSource{devices, claims}
	// A runtime that resolves CDI devices itself gets their names.
	e.rs.info = map[string]string{"config": `{"enableCDI":true}`}

	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	if res.Err != nil || len(res.Waiting) != 0 {
		t.Fatalf("SyncPod = %+v", res)
	}
	var cfg *runtimeapi.ContainerConfig
	e.rs.Lock()
	for _, c := range e.rs.configs {
		cfg = c
	}
	e.rs.Unlock()
	if cfg == nil {
		t.Fatal("no container created")
	}
	// The plugin's env comes first: the spec's SHARED is the later one.
	var env []string
	for _, kv := range cfg.Envs {
		env = append(env, kv.Key+"="+string(kv.Value))
	}
	if want := []string{"DEV=Dev-1", "SHARED=plugin", "SHARED=spec"}; !reflect.DeepEqual(env[:3], want) {
		t.Errorf("env = %q, want %q first", env, want)
	}
	if m := cfg.Mounts[0]; m.ContainerPath != "/tmp/Dev-1" || m.HostPath != "/tmp/Dev-1" || !m.Readonly {
		t.Errorf("first mount = %+v, want the plugin's", m)
	}
	if want := []*runtimeapi.Device{{ContainerPath: "/dev/fake0", HostPath: "/dev/null", Permissions: "rw"}}; !reflect.DeepEqual(cfg.Devices, want) {
		t.Errorf("devices = %+v, want %+v", cfg.Devices, want)
	}
	if want := []*runtimeapi.CDIDevice{{Name: "example.com/resource=CDI-Dev-1"}, {Name: "dra.example.com/gpu=gpu-0"}}; !reflect.DeepEqual(cfg.CDIDevices, want) {
		t.Errorf("CDI devices = %+v, want %+v", cfg.CDIDevices, want)
	}
	if cfg.Annotations["example.com/dev"] != "Dev-1" || cfg.Annotations[container.AnnotationContainerRestartCount] != "0" {
		t.Errorf("annotations = %v, want the plugin's, berth's winning a clash", cfg.Annotations)
	}
}

func TestContainerExtrasErrorIsAConfigError(t *testing.T) {
	e := newEnv(t)
	pod := fakePod()
	e.m.opts.ContainerExtras = []ContainerExtrasSource{extrasFunc(func(*v1.Pod, *v1.Container) (ContainerExtras, error) {
		return ContainerExtras{}, errors.New("device plugin PreStartContainer rpc failed")
	})}
	res := e.m.SyncPod(context.Background(), pod, nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	w, ok := res.Waiting["init"]
	if !ok || w.Reason != ReasonCreateContainerConfigError || w.Message != `get resources of container "init": device plugin PreStartContainer rpc failed` {
		t.Fatalf("waiting = %+v, want CreateContainerConfigError", res.Waiting)
	}
}
