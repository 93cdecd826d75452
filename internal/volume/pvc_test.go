package volume

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func claimVolume(name, claim string, readOnly bool) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}}}
}

func boundClaim(name, pv string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "claim-" + "uid-" + "1"},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: pv},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	}
}

func volumeFor(name string, src v1.PersistentVolumeSource, affinity *v1.VolumeNodeAffinity) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeSource: src,
			ClaimRef:               &v1.ObjectReference{Namespace: "ns", Name: "data", UID: "claim-uid-1"},
			NodeAffinity:           affinity,
		},
	}
}

func onNode(hostname string) *v1.VolumeNodeAffinity {
	return &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
		MatchExpressions: []v1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: v1.NodeSelectorOpIn, Values: []string{hostname}}},
	}}}}
}

func TestPersistentVolumeClaim(t *testing.T) {
	local := t.TempDir()
	host := t.TempDir()
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/hostname": "node-1"}}}
	pending := boundClaim("data", "")
	pending.Status.Phase = v1.ClaimPending
	dirType := v1.HostPathDirectory
	cases := []struct {
		name     string
		objs     []runtime.Object
		readOnly bool
		wantPath string
		wantErr  string
		wantOp   string
	}{
		{"local", []runtime.Object{node, boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, onNode("node-1"))}, false, local, "", ""},
		{"hostPath read-only", []runtime.Object{boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host, Type: &dirType}}, nil)}, true, host, "", ""},
		{"missing claim", nil, false, "", `error processing PVC ns/data: failed to fetch PVC from API server: persistentvolumeclaims "data" not found`, ""},
		{"pending claim", []runtime.Object{pending}, false, "", "error processing PVC ns/data: PVC is not bound", ""},
		{"claim of another volume", []runtime.Object{boundClaim("data", "pv1"), func() *v1.PersistentVolume {
			pv := volumeFor("pv1", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, nil)
			pv.Spec.ClaimRef.UID = "other"
			return pv
		}()}, false, "", "error processing PVC ns/data: found PV object pv1 but its pv.Spec.ClaimRef.UID other does not point to claim.UID claim-uid-1", ""},
		{"csi volume", []runtime.Object{boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "x", VolumeHandle: "h"}}, nil)}, false, "", `volume type "csi" of PersistentVolume pv1 is not supported by berth yet`, ""},
		{"other node", []runtime.Object{node, boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, onNode("node-2"))}, false, "", "no matching NodeSelectorTerms", "MountVolume.NodeAffinity check failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.objs...)
			pod := newPod("u1", claimVolume("data", "data", tc.readOnly))
			err := h.m.SetUp(context.Background(), pod)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SetUp = %v; want %q", err, tc.wantErr)
				}
				op := tc.wantOp
				if op == "" {
					op = "MountVolume.SetUp failed"
				}
				if e := h.event(); e != "Warning FailedMount "+op+` for volume "data" : `+tc.wantErr {
					t.Fatalf("event = %q", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, ok := h.m.Volume(pod.UID, "data")
			if !ok || v.Path != tc.wantPath || v.ReadOnly != tc.readOnly {
				t.Fatalf("Volume = %+v, %v; want path %s, readOnly %v", v, ok, tc.wantPath, tc.readOnly)
			}
		})
	}
}

func TestNodeSelector(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a", "gen": "5"}}}
	req := func(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
		return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	cases := []struct {
		name  string
		terms []v1.NodeSelectorTerm
		want  bool
	}{
		{"in", []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpIn, "a", "b")}}}, true},
		{"not in", []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpNotIn, "a")}}}, false},
		{"exists and gt", []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpExists), req("gen", v1.NodeSelectorOpGt, "4")}}}, true},
		{"lt fails", []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("gen", v1.NodeSelectorOpLt, "4")}}}, false},
		{"does not exist", []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("gpu", v1.NodeSelectorOpDoesNotExist)}}}, true},
		{"field name", []v1.NodeSelectorTerm{{MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, "n1")}}}, true},
		{"terms are ORed", []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{req("zone", v1.NodeSelectorOpIn, "z")}}, {MatchFields: []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, "n1")}}}, true},
		{"empty term matches nothing", []v1.NodeSelectorTerm{{}}, false},
	}
	for _, tc := range cases {
		if got := nodeSelectorMatches(&v1.NodeSelector{NodeSelectorTerms: tc.terms}, node); got != tc.want {
			t.Errorf("%s: match = %v; want %v", tc.name, got, tc.want)
		}
	}
}
