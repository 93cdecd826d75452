package csi

import (
	"testing"

	storagev1 "k8s.io/api/storage/v1"
)

func TestWithNodeID(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    string
		changed bool
		wantErr bool
	}{
		{name: "first driver", in: nil, want: `{"d":"n1"}`, changed: true},
		{name: "another driver", in: map[string]string{nodeIDAnnotation: `{"a":"x"}`}, want: `{"a":"x","d":"n1"}`, changed: true},
		{name: "same", in: map[string]string{nodeIDAnnotation: `{"d":"n1"}`}, want: `{"d":"n1"}`},
		{name: "new ID", in: map[string]string{nodeIDAnnotation: `{"d":"old"}`}, want: `{"d":"n1"}`, changed: true},
		{name: "bad JSON", in: map[string]string{nodeIDAnnotation: `{`}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := withNodeID(tc.in, "d", "n1")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if out[nodeIDAnnotation] != tc.want || changed != tc.changed {
				t.Errorf("got %q changed=%v, want %q changed=%v", out[nodeIDAnnotation], changed, tc.want, tc.changed)
			}
		})
	}
}

func TestWithoutNodeID(t *testing.T) {
	out, changed, err := withoutNodeID(map[string]string{nodeIDAnnotation: `{"a":"x","d":"n1"}`, "other": "1"}, "d")
	if err != nil || !changed || out[nodeIDAnnotation] != `{"a":"x"}` || out["other"] != "1" {
		t.Errorf("got %v %v %v", out, changed, err)
	}
	out, changed, _ = withoutNodeID(map[string]string{nodeIDAnnotation: `{"d":"n1"}`}, "d")
	if _, ok := out[nodeIDAnnotation]; ok || !changed {
		t.Errorf("last driver: annotation should go, got %v", out)
	}
	_, changed, _ = withoutNodeID(nil, "d")
	if changed {
		t.Error("nothing to remove: no change")
	}
}

func TestWithTopology(t *testing.T) {
	labels := map[string]string{"zone": "a"}
	if _, _, err := withTopology(labels, map[string]string{"zone": "b"}); err == nil {
		t.Error("collision not reported")
	}
	out, changed, err := withTopology(labels, map[string]string{"zone": "a", "rack": "1"})
	if err != nil || !changed || out["rack"] != "1" || labels["rack"] != "" {
		t.Errorf("got %v %v %v (input must not change)", out, changed, err)
	}
	if _, changed, _ := withTopology(out, map[string]string{"rack": "1"}); changed {
		t.Error("present already: no change")
	}
}

func TestWithDriver(t *testing.T) {
	cn := newCSINode("n", "uid")
	info := nodeInfo{nodeID: "id1", maxVolume: 5, topology: map[string]string{"b": "1", "a": "2"}}
	if !withDriver(cn, "d", info) {
		t.Fatal("first install: no change")
	}
	got := cn.Spec.Drivers[0]
	if got.Name != "d" || got.NodeID != "id1" || *got.Allocatable.Count != 5 || got.TopologyKeys[0] != "a" || got.TopologyKeys[1] != "b" {
		t.Errorf("entry = %+v", got)
	}
	if withDriver(cn, "d", info) {
		t.Error("same info: change reported")
	}
	info.maxVolume = 0
	if !withDriver(cn, "d", info) || cn.Spec.Drivers[0].Allocatable != nil || len(cn.Spec.Drivers) != 1 {
		t.Errorf("no limit: %+v", cn.Spec.Drivers)
	}
	withDriver(cn, "e", nodeInfo{nodeID: "x"})
	if !withoutDriver(cn, "d") || len(cn.Spec.Drivers) != 1 || cn.Spec.Drivers[0].Name != "e" {
		t.Errorf("uninstall: %+v", cn.Spec.Drivers)
	}
	if withoutDriver(cn, "d") {
		t.Error("uninstall of an absent driver reported a change")
	}
}

func TestCSINodeOwnership(t *testing.T) {
	cn := newCSINode("n", "uid1")
	if !ownedBy(cn, "n", "uid1") || ownedBy(cn, "n", "uid2") {
		t.Error("ownership by Node UID")
	}
	if cn.Annotations["storage.alpha.kubernetes.io/migrated-plugins"] == "" {
		t.Error("migrated plugins annotation missing")
	}
	bare := &storagev1.CSINode{}
	if !withMigrationAnnotation(bare) || withMigrationAnnotation(bare) {
		t.Error("migration annotation: set once")
	}
}
