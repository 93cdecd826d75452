package nodestatus

import (
	"maps"
	goruntime "runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReconcileExisting(t *testing.T) {
	osArch := map[string]string{
		"kubernetes.io/os": goruntime.GOOS, "kubernetes.io/arch": goruntime.GOARCH,
		"beta.kubernetes.io/os": goruntime.GOOS, "beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	with := func(extra map[string]string) map[string]string {
		m := maps.Clone(osArch)
		maps.Copy(m, extra)
		return m
	}
	attach := map[string]string{controllerManagedAttachAnnotation: "true"}
	tests := []struct {
		name            string
		nodeLabels      map[string]string // --node-labels
		existing        metav1.ObjectMeta
		wantLabels      map[string]string
		wantAnnotations map[string]string
		wantChanged     bool
	}{
		{
			name:            "up to date",
			existing:        metav1.ObjectMeta{Labels: with(map[string]string{"kubernetes.io/hostname": "node-a"}), Annotations: attach},
			wantLabels:      with(map[string]string{"kubernetes.io/hostname": "node-a"}),
			wantAnnotations: attach,
		},
		{
			name:            "bare node: owned labels and annotation added",
			existing:        metav1.ObjectMeta{},
			wantLabels:      with(map[string]string{"kubernetes.io/hostname": "node-a"}),
			wantAnnotations: attach,
			wantChanged:     true,
		},
		{
			name:       "owned labels fixed, others kept, node labels only at creation",
			nodeLabels: map[string]string{"example.com/role": "edge", v1.LabelTopologyZone: "zone-b"},
			existing: metav1.ObjectMeta{
				Labels: with(map[string]string{
					"kubernetes.io/hostname": "old-name", "kubernetes.io/os": "windows",
					"team": "a", v1.LabelTopologyZone: "zone-a", v1.LabelTopologyRegion: "r1",
				}),
				Annotations: map[string]string{"other": "x"},
			},
			// The zone is owned and given by the node labels, so it is
			// updated; the region is owned but not given, so it stays.
			wantLabels: with(map[string]string{
				"kubernetes.io/hostname": "node-a", "team": "a",
				v1.LabelTopologyZone: "zone-b", v1.LabelTopologyRegion: "r1",
			}),
			wantAnnotations: map[string]string{"other": "x", controllerManagedAttachAnnotation: "true"},
			wantChanged:     true,
		},
		{
			name:            "an empty owned label removes it",
			nodeLabels:      map[string]string{v1.LabelInstanceTypeStable: ""},
			existing:        metav1.ObjectMeta{Labels: with(map[string]string{"kubernetes.io/hostname": "node-a", v1.LabelInstanceTypeStable: "big"}), Annotations: attach},
			wantLabels:      with(map[string]string{"kubernetes.io/hostname": "node-a"}),
			wantAnnotations: attach,
			wantChanged:     true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.labels = tt.nodeLabels
			initial := initialNode(cfg, testFacts())
			existing := &v1.Node{ObjectMeta: tt.existing}
			changed := reconcileExisting(existing, initial)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if !maps.Equal(existing.Labels, tt.wantLabels) {
				t.Errorf("labels:\n got %v\nwant %v", existing.Labels, tt.wantLabels)
			}
			if !maps.Equal(existing.Annotations, tt.wantAnnotations) {
				t.Errorf("annotations = %v, want %v", existing.Annotations, tt.wantAnnotations)
			}
		})
	}
}

func TestInitialLabelsNodeLabelsWin(t *testing.T) {
	got := initialLabels("node-a", map[string]string{"kubernetes.io/hostname": "alias", "node-role.kubernetes.io/worker": ""})
	if got["kubernetes.io/hostname"] != "alias" || got["node-role.kubernetes.io/worker"] != "" || got["kubernetes.io/os"] != goruntime.GOOS {
		t.Errorf("labels = %v", got)
	}
}
