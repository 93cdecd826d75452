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

// onNodes: one term per host name.
func onNodes(hostnames ...string) *v1.VolumeNodeAffinity {
	a := &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{}}
	for _, h := range hostnames {
		a.Required.NodeSelectorTerms = append(a.Required.NodeSelectorTerms, onNode(h).Required.NodeSelectorTerms...)
	}
	return a
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
		{"affinity terms are ORed", []runtime.Object{node, boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, onNodes("node-2", "node-1"))}, false, local, "", ""},
		{"malformed affinity", []runtime.Object{node, boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: v1.NodeSelectorOpGt, Values: []string{"x"}}},
		}}}})}, false, "", `nodeSelectorTerms[0].matchExpressions[0].values[0]: Invalid value: "x": for 'Gt', 'Lt' operators, the value must be an integer`, "MountVolume.NodeAffinity check failed"},
		// Upstream checks a volume's affinity against the node's labels only:
		// a term on metadata.name is not held against the node.
		{"affinity on the node name", []runtime.Object{node, boundClaim("data", "pv1"), volumeFor("pv1", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"node-2"}}},
		}}}})}, false, local, "", ""},
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
