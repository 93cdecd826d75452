package cdi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testDriverSpec = `{"cdiVersion":"0.3.0","kind":"test-driver.cdi.k8s.io/test",
 "devices":[{"name":"claim-1-req","containerEdits":{"env":["claim_c_req=true","user_a=b"]}}]}`

const gpuSpec = `cdiVersion: 0.6.0
kind: vendor.com/gpu
containerEdits:
  env: [GPU_LIB=1]
devices:
- name: gpu0
  containerEdits:
    deviceNodes:
    - path: /dev/gpu0
      hostPath: /dev/null
    mounts:
    - hostPath: /opt/gpu
      containerPath: /usr/lib/gpu
      options: [ro, rbind]
- name: gpu1
  containerEdits:
    deviceNodes:
    - path: /dev/gpu1
      permissions: rw
`

func TestResolve(t *testing.T) {
	etc, run := t.TempDir(), t.TempDir()
	write := func(dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(run, "test-driver.json", testDriverSpec)
	write(etc, "gpu.yaml", gpuSpec)
	write(etc, "notes.txt", "not a spec")
	// A newer spec of the test driver's kind in a later directory wins.
	write(etc, "old.json", strings.ReplaceAll(testDriverSpec, "user_a=b", "user_a=old"))
	dirs := []string{etc, run, filepath.Join(etc, "missing")}

	kv := func(k, v string) *runtimeapi.KeyValue { return &runtimeapi.KeyValue{Key: k, Value: []byte(v)} }
	for _, tc := range []struct {
		name    string
		ids     []string
		want    Edits
		wantErr string
	}{
		{name: "none"},
		{name: "env only", ids: []string{"test-driver.cdi.k8s.io/test=claim-1-req"},
			want: Edits{Env: []*runtimeapi.KeyValue{kv("claim_c_req", "true"), kv("user_a", "b")}}},
		{name: "spec edits once, then each device", ids: []string{"vendor.com/gpu=gpu0", "vendor.com/gpu=gpu1"},
			want: Edits{
				Env: []*runtimeapi.KeyValue{kv("GPU_LIB", "1")},
				Devices: []*runtimeapi.Device{
					{ContainerPath: "/dev/gpu0", HostPath: "/dev/null", Permissions: "rwm"},
					{ContainerPath: "/dev/gpu1", HostPath: "/dev/gpu1", Permissions: "rw"},
				},
				Mounts: []*runtimeapi.Mount{{HostPath: "/opt/gpu", ContainerPath: "/usr/lib/gpu", Readonly: true}},
			}},
		{name: "unknown device", ids: []string{"vendor.com/gpu=gpu9"}, wantErr: `CDI device "vendor.com/gpu=gpu9": unresolvable`},
		{name: "not qualified", ids: []string{"gpu0"}, wantErr: "not a qualified name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(dirs, tc.ids)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestResolveRefusesWhatCRICannotCarry(t *testing.T) {
	for name, spec := range map[string]string{
		"hook":  `{"kind":"v.com/c","devices":[{"name":"d","containerEdits":{"hooks":[{"hookName":"createContainer","path":"/bin/true"}]}}]}`,
		"tmpfs": `{"kind":"v.com/c","devices":[{"name":"d","containerEdits":{"mounts":[{"hostPath":"tmpfs","containerPath":"/x","type":"tmpfs"}]}}]}`,
		"gids":  `{"kind":"v.com/c","devices":[{"name":"d","containerEdits":{"additionalGids":[5]}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := resolve([]loaded{parse("s.json", []byte(spec))}, []string{"v.com/c=d"})
			if err == nil || !strings.Contains(err.Error(), "needs a runtime with CDI support") && !strings.Contains(err.Error(), "need a runtime with CDI support") {
				t.Fatalf("error %v, want a refusal", err)
			}
		})
	}
	// A broken file is named when the device is not found elsewhere.
	_, err := resolve([]loaded{parse("broken.json", []byte("{"))}, []string{"v.com/c=d"})
	if err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Fatalf("error %v, want the broken file named", err)
	}
}

func TestRuntimeResolves(t *testing.T) {
	for _, tc := range []struct {
		name string
		info map[string]string
		want bool
	}{
		{"containerd", map[string]string{"config": `{"sandboxImage":"pause"}`}, false},
		{"containerd", map[string]string{"config": `{"enableCDI":true,"cdiSpecDirs":["/etc/cdi"]}`}, true},
		{"containerd", map[string]string{"config": `{"enableCDI":false}`}, false},
		{"containerd", nil, false},
		{"cri-o", nil, true},
	} {
		if got := RuntimeResolves(tc.name, tc.info); got != tc.want {
			t.Errorf("RuntimeResolves(%q, %v) = %v, want %v", tc.name, tc.info, got, tc.want)
		}
	}
}
