package runtime

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/internal/plan"
)

// A runtime without CDI support (containerd 1.6: no enableCDI in its
// verbose status) gets what the CDI specs say instead of the names.
func TestCDIDevicesResolvedForARuntimeWithoutCDI(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	spec := `{"cdiVersion":"0.6.0","kind":"dra.example.com/gpu","devices":[{"name":"gpu-0","containerEdits":{
		"env":["GPU=0"],"deviceNodes":[{"path":"/dev/gpu0","hostPath":"/dev/null"}],
		"mounts":[{"hostPath":"/opt/gpu","containerPath":"/usr/lib/gpu","options":["ro","bind"]}]}}]}`
	if err := os.WriteFile(filepath.Join(dir, "gpu.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	e.m.opts.CDISpecDirs = []string{dir}
	e.rs.info = map[string]string{"config": `{"sandboxImage":"registry.k8s.io/pause:3.10"}`}
	e.m.opts.ContainerExtras = []ContainerExtrasSource{extrasFunc(func(_ *v1.Pod, c *v1.Container) (ContainerExtras, error) {
		return ContainerExtras{CDIDevices: []string{"dra.example.com/gpu=gpu-0"}}, nil
	})}

	res := e.m.SyncPod(context.Background(), fakePod(), nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
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
	if len(cfg.CDIDevices) != 0 {
		t.Errorf("CDI devices %v passed to a runtime that ignores them", cfg.CDIDevices)
	}
	if kv := cfg.Envs[0]; kv.Key != "GPU" || string(kv.Value) != "0" {
		t.Errorf("first env %s=%s, want the spec's GPU=0", kv.Key, kv.Value)
	}
	if want := []*runtimeapi.Device{{ContainerPath: "/dev/gpu0", HostPath: "/dev/null", Permissions: "rwm"}}; !reflect.DeepEqual(cfg.Devices, want) {
		t.Errorf("devices = %+v, want %+v", cfg.Devices, want)
	}
	if m := cfg.Mounts[0]; m.ContainerPath != "/usr/lib/gpu" || m.HostPath != "/opt/gpu" || !m.Readonly {
		t.Errorf("first mount = %+v, want the spec's", m)
	}
}

// A device no spec describes keeps the container from being created.
func TestUnresolvableCDIDeviceIsAConfigError(t *testing.T) {
	e := newEnv(t)
	e.m.opts.CDISpecDirs = []string{t.TempDir()}
	e.m.opts.ContainerExtras = []ContainerExtrasSource{extrasFunc(func(_ *v1.Pod, c *v1.Container) (ContainerExtras, error) {
		return ContainerExtras{CDIDevices: []string{"dra.example.com/gpu=gone"}}, nil
	})}
	res := e.m.SyncPod(context.Background(), fakePod(), nil, plan.PodActions{CreateSandbox: true, NextInitContainer: 0})
	var w []string
	for _, x := range res.Waiting {
		w = append(w, x.Reason+": "+x.Message)
	}
	if len(res.Waiting) != 1 || w[0] != `CreateContainerConfigError: CDI device "dra.example.com/gpu=gone": unresolvable: no CDI spec has it` {
		t.Fatalf("waiting %q, want a CreateContainerConfigError naming the device", w)
	}
}
