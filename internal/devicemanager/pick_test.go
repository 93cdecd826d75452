package devicemanager

import (
	"reflect"
	"testing"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-dev/berth/internal/devicemanager/checkpoint"
	"github.com/berth-dev/berth/internal/runtime"
)

func TestPickDevices(t *testing.T) {
	tests := []struct {
		name                           string
		reusable, available, preferred []string
		needed                         int
		want                           []string
	}{
		{name: "name order", available: []string{"d3", "d1", "d2"}, needed: 2, want: []string{"d1", "d2"}},
		{name: "reusable first", reusable: []string{"d9"}, available: []string{"d1", "d2"}, needed: 2, want: []string{"d9", "d1"}},
		{name: "preferred among available", available: []string{"d1", "d2", "d3"}, preferred: []string{"d3", "d7"}, needed: 2, want: []string{"d3", "d1"}},
		{name: "not enough", available: []string{"d1"}, needed: 2, want: []string{"d1"}},
		{name: "none needed", available: []string{"d1"}, needed: 0, want: []string{}},
		{name: "no duplicates", reusable: []string{"d1"}, available: []string{"d1", "d2"}, preferred: []string{"d1"}, needed: 2, want: []string{"d1", "d2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickDevices(tt.reusable, tt.available, tt.preferred, tt.needed); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pickDevices = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestByNUMA(t *testing.T) {
	devices := map[string]*pluginapi.Device{
		"d0": {ID: "d0", Topology: &pluginapi.TopologyInfo{Nodes: []*pluginapi.NUMANode{{ID: 1}}}},
		"d1": {ID: "d1"},
	}
	got := byNUMA([]string{"d0", "d1", "gone"}, devices)
	want := checkpoint.DevicesPerNUMA{1: {"d0"}, -1: {"d1", "gone"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("byNUMA = %v, want %v", got, want)
	}
	if ids := deviceIDs(got); !reflect.DeepEqual(ids, []string{"d0", "d1", "gone"}) {
		t.Errorf("deviceIDs = %v", ids)
	}
}

func TestExtrasFrom(t *testing.T) {
	got := extrasFrom([]*pluginapi.ContainerAllocateResponse{{
		Envs:        map[string]string{"B": "1", "A": "1"},
		Mounts:      []*pluginapi.Mount{{ContainerPath: "/m", HostPath: "/h1", ReadOnly: true}},
		Devices:     []*pluginapi.DeviceSpec{{ContainerPath: "/dev/x", HostPath: "/dev/x0", Permissions: "rw"}},
		Annotations: map[string]string{"k": "first"},
		CdiDevices:  []*pluginapi.CDIDevice{{Name: "v.com/c=one"}},
	}, {
		// A second resource's settings lose on a clash, as upstream.
		Envs:        map[string]string{"A": "2", "C": "2"},
		Mounts:      []*pluginapi.Mount{{ContainerPath: "/m", HostPath: "/h2"}},
		Devices:     []*pluginapi.DeviceSpec{{ContainerPath: "/dev/x", HostPath: "/dev/x1"}},
		Annotations: map[string]string{"k": "second"},
		CdiDevices:  []*pluginapi.CDIDevice{{Name: "v.com/c=one"}, {Name: "v.com/c=two"}},
	}})
	want := runtime.ContainerExtras{
		Env:         []runtime.ExtraEnv{{Name: "A", Value: "1"}, {Name: "B", Value: "1"}, {Name: "C", Value: "2"}},
		Mounts:      []runtime.ExtraMount{{ContainerPath: "/m", HostPath: "/h1", ReadOnly: true}},
		Devices:     []runtime.ExtraDevice{{ContainerPath: "/dev/x", HostPath: "/dev/x0", Permissions: "rw"}},
		Annotations: map[string]string{"k": "first"},
		CDIDevices:  []string{"v.com/c=one", "v.com/c=two"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("extrasFrom = %+v\nwant %+v", got, want)
	}
}

func TestIsExtendedResource(t *testing.T) {
	for name, want := range map[string]bool{
		"example.com/resource":       true,
		"nvidia.com/gpu":             true,
		"cpu":                        false,
		"kubernetes.io/foo":          false,
		"requests.example.com/thing": false,
		"example.com/bad name":       false,
	} {
		if got := isExtendedResource(name); got != want {
			t.Errorf("isExtendedResource(%q) = %v, want %v", name, got, want)
		}
	}
}
