package file

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

func TestChoosePod(t *testing.T) {
	v1pod := &v1.Pod{}
	v1pod.UID = "v1"
	v2pod := &v1.Pod{}
	v2pod.UID = "v2"
	bad := errors.New("parse error")
	refused := errors.New("violates PodSecurity")

	for _, tc := range []struct {
		name        string
		last        *v1.Pod
		lastRefused bool
		parsed      *v1.Pod
		parseErr    error
		refusal     error
		want        choice
	}{
		{"new allowed manifest", nil, false, v2pod, nil, nil, choice{pod: v2pod}},
		{"allowed update replaces", v1pod, false, v2pod, nil, nil, choice{pod: v2pod}},
		{"unparsable new manifest lists nothing", nil, false, nil, bad, nil, choice{err: bad}},
		{"unparsable update keeps the last pod", v1pod, false, nil, bad, nil, choice{pod: v1pod, err: bad}},
		{"unparsable update keeps a refused pod refused", v1pod, true, nil, bad, nil, choice{pod: v1pod, refused: true, err: bad}},
		{"refused new manifest is listed, to be rejected", nil, false, v2pod, nil, refused, choice{pod: v2pod, refused: true, err: refused}},
		{"refused update keeps the allowed pod running", v1pod, false, v2pod, nil, refused, choice{pod: v1pod, err: refused}},
		{"refused update of a refused pod replaces it", v1pod, true, v2pod, nil, refused, choice{pod: v2pod, refused: true, err: refused}},
		{"allowed update of a refused pod replaces it", v1pod, true, v2pod, nil, nil, choice{pod: v2pod}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := choosePod(tc.last, tc.lastRefused, tc.parsed, tc.parseErr, tc.refusal); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestScanScreen runs manifest edits through scan with a Screen that
// refuses privileged containers: what the snapshot lists, and what
// OnRefused is told.
func TestScanScreen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "web.yaml")
	privileged := manifest("web", "nginx:1") + "    securityContext:\n      privileged: true\n"
	type report struct {
		refused, kept types.UID
	}
	var reports []report
	s := New(Options{Path: dir, NodeName: "node",
		Screen: func(pod *v1.Pod) error {
			if sc := pod.Spec.Containers[0].SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
				return errors.New("privileged")
			}
			return nil
		},
		OnRefused: func(path string, refused, kept *v1.Pod, err error) {
			if path != p || err.Error() != "privileged" {
				t.Errorf("OnRefused(%s, %v)", path, err)
			}
			r := report{refused: refused.UID}
			if kept != nil {
				r.kept = kept.UID
			}
			reports = append(reports, r)
		},
	})
	st := &scanState{files: map[string]*fileState{}}
	scan := func(content string) (image string, changed bool) {
		t.Helper()
		write(t, p, content)
		pods, changed := s.scan(klog.Background(), st)
		if len(pods) != 1 {
			t.Fatalf("%d pods listed, want 1", len(pods))
		}
		c := pods[0].Spec.Containers[0]
		image = c.Image
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			image += " privileged"
		}
		return image, changed
	}

	// A refused manifest with nothing before it is listed (admission
	// rejects it); a second refused version replaces it.
	if img, _ := scan(privileged); img != "nginx:1 privileged" {
		t.Fatalf("new refused manifest: %s listed", img)
	}
	if img, changed := scan(strings.Replace(privileged, "nginx:1", "nginx:2", 1)); img != "nginx:2 privileged" || !changed {
		t.Fatalf("refused after refused: %s listed (changed %v)", img, changed)
	}
	// An allowed version replaces it; a refused update leaves it running
	// and sends no snapshot.
	if img, changed := scan(manifest("web", "nginx:3")); img != "nginx:3" || !changed {
		t.Fatalf("allowed: %s listed (changed %v)", img, changed)
	}
	kept := st.files[p].pod.UID
	if img, changed := scan(strings.Replace(privileged, "nginx:1", "nginx:4", 1)); img != "nginx:3" || changed {
		t.Fatalf("refused update: %s listed (changed %v), want nginx:3 unchanged", img, changed)
	}
	if errs := s.Errors(); errs[p] == nil || errs[p].Error() != "privileged" {
		t.Errorf("Errors() = %v, want the refusal for %s", errs, p)
	}
	// Fixed: the new allowed version runs.
	if img, changed := scan(manifest("web", "nginx:5")); img != "nginx:5" || !changed {
		t.Fatalf("fixed: %s listed (changed %v)", img, changed)
	}
	if len(s.Errors()) != 0 {
		t.Errorf("Errors() = %v after the fix", s.Errors())
	}

	if len(reports) != 3 || reports[0].kept != "" || reports[1].kept != "" || reports[2].kept != kept {
		t.Errorf("OnRefused reports %+v, want two without a kept pod, then one keeping %s", reports, kept)
	}
}

// TestScanScreenAfterRestart: the last allowed version of a manifest is
// kept on disk, so that a berth started while the manifest holds a
// refused version runs the allowed one (the same UID, so its containers
// are adopted); kept versions go with their manifests.
func TestScanScreenAfterRestart(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "web.yaml")
	refuse := func(pod *v1.Pod) error {
		if pod.Spec.Containers[0].Image == "nginx:bad" {
			return errors.New("refused")
		}
		return nil
	}
	var refusals []types.UID
	newSource := func() (*Source, *scanState) {
		return New(Options{Path: dir, NodeName: "node", Screen: refuse, AllowedDir: state,
			OnRefused: func(_ string, _, kept *v1.Pod, _ error) {
				if kept != nil {
					refusals = append(refusals, kept.UID)
				}
			}}), &scanState{files: map[string]*fileState{}}
	}
	scan := func(s *Source, st *scanState) []*v1.Pod {
		t.Helper()
		pods, _ := s.scan(klog.Background(), st)
		return pods
	}

	write(t, p, manifest("web", "nginx:1"))
	s, st := newSource()
	v1uid := scan(s, st)[0].UID
	write(t, p, manifest("web", "nginx:bad"))
	if pods := scan(s, st); pods[0].UID != v1uid {
		t.Fatalf("refused update replaced the pod")
	}

	// Restart with the refused version on disk.
	s, st = newSource()
	pods := scan(s, st)
	if len(pods) != 1 || pods[0].UID != v1uid || pods[0].Spec.Containers[0].Image != "nginx:1" {
		t.Fatalf("after a restart: %d pods, %v; want the allowed version %s", len(pods), pods, v1uid)
	}
	if len(refusals) != 2 || refusals[1] != v1uid {
		t.Errorf("refusals reported keeping %v, want %s twice", refusals, v1uid)
	}

	// An allowed update replaces the kept version, on disk too.
	write(t, p, manifest("web", "nginx:2"))
	v2uid := scan(s, st)[0].UID
	s, st = newSource()
	if pods := scan(s, st); len(pods) != 1 || pods[0].UID != v2uid {
		t.Fatalf("after the second restart: %v, want %s", pods, v2uid)
	}

	// A manifest deleted, also while berth is down, takes its kept
	// version with it.
	other := filepath.Join(dir, "other.yaml")
	write(t, other, manifest("other", "nginx:1"))
	scan(s, st)
	remove(t, p)
	scan(s, st)
	remove(t, other)
	s, st = newSource()
	scan(s, st)
	if entries, err := os.ReadDir(state); err != nil || len(entries) != 0 {
		t.Errorf("kept versions left after their manifests went: %v %v", entries, err)
	}
}
