package manifesturl

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/source"
)

const podYAML = `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: c, image: busybox}]
`

const podListJSON = `{"apiVersion": "v1", "kind": "PodList", "items": [
 {"metadata": {"name": "a", "namespace": "kube-system"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
 {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}]}`

// server serves body with status, recording the last request's header.
type server struct {
	mu     sync.Mutex
	body   string
	status int
	header http.Header
}

func (s *server) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = r.Header.Clone()
	w.WriteHeader(s.status)
	_, _ = w.Write([]byte(s.body))
}

func names(pods []*v1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

// TestRead walks one URL through the states upstream's http source knows.
func TestRead(t *testing.T) {
	srv := &server{status: http.StatusOK, body: podYAML}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	s := New(Options{URL: ts.URL, NodeName: "Node-A", Header: http.Header{"Authorization": {"Bearer x"}}})
	ctx := context.Background()

	steps := []struct {
		name        string
		status      int
		body        string
		wantSent    bool
		wantPods    []string
		wantErrPart string
	}{
		{name: "one pod", status: 200, body: podYAML, wantSent: true, wantPods: []string{"default/web-node-a"}},
		{name: "unchanged", status: 200, body: podYAML},
		{name: "server error keeps the pods", status: 500, body: podListJSON, wantErrPart: "500 Internal Server Error"},
		{name: "pod list", status: 200, body: podListJSON, wantSent: true, wantPods: []string{"kube-system/a-node-a", "default/b-node-a"}},
		{name: "broken keeps the pods", status: 200, body: "kind: Pod\nmetadata: {", wantErrPart: "not valid YAML"},
		{name: "broken again is quiet", status: 200, body: "kind: Pod\nmetadata: {"},
		{name: "wrong kind", status: 200, body: `{"apiVersion": "v1", "kind": "ConfigMap"}`, wantErrPart: "kind Pod or PodList"},
		{name: "empty means none", status: 200, body: "", wantSent: true, wantPods: nil, wantErrPart: "zero-length data"},
		{name: "the same pod again after empty", status: 200, body: podYAML, wantSent: true, wantPods: []string{"default/web-node-a"}},
	}
	for _, st := range steps {
		srv.set(st.status, st.body)
		pods, sent, err := s.read(ctx)
		if sent != st.wantSent || strings.Join(names(pods), ",") != strings.Join(st.wantPods, ",") {
			t.Errorf("%s: sent %v pods %v, want %v %v", st.name, sent, names(pods), st.wantSent, st.wantPods)
		}
		if (st.wantErrPart == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), st.wantErrPart)) {
			t.Errorf("%s: err %v, want one containing %q", st.name, err, st.wantErrPart)
		}
		for _, p := range pods {
			if p.Annotations[source.AnnotationConfigSource] != source.SourceHTTP || p.Spec.NodeName != "Node-A" ||
				p.UID == "" || p.Annotations[source.AnnotationConfigSeen] == "" {
				t.Errorf("%s: pod %s not made static from the URL: %v, uid %q, node %q", st.name, p.Name, p.Annotations, p.UID, p.Spec.NodeName)
			}
			if len(p.Spec.Tolerations) != 0 {
				t.Errorf("%s: pod %s got tolerations %v; a URL's pods get none", st.name, p.Name, p.Spec.Tolerations)
			}
		}
	}
	if got := srv.header.Get("Authorization"); got != "Bearer x" {
		t.Errorf("Authorization header %q, want the configured one", got)
	}
}

// TestUIDFromURL: the same pod served from two URLs is two pods.
func TestUIDFromURL(t *testing.T) {
	srv := &server{status: http.StatusOK, body: podYAML}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	uid := func(url string) string {
		pods, _, err := New(Options{URL: url, NodeName: "n"}).read(context.Background())
		if err != nil || len(pods) != 1 {
			t.Fatalf("read %s: %v, %v", url, names(pods), err)
		}
		return string(pods[0].UID)
	}
	a, b, again := uid(ts.URL+"/a"), uid(ts.URL+"/b"), uid(ts.URL+"/a")
	if a == b || a != again {
		t.Errorf("UIDs %s (a) %s (b) %s (a again): want stable per URL, different between URLs", a, b, again)
	}
}

// TestRunSendsFirstSnapshot: Run reads at once and sends what it read;
// an unreachable URL sends nothing.
func TestRunSendsFirstSnapshot(t *testing.T) {
	srv := &server{status: http.StatusOK, body: podYAML}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan []*v1.Pod)
	done := make(chan struct{})
	go func() { defer close(done); New(Options{URL: ts.URL, NodeName: "n", Period: time.Hour}).Run(ctx, out) }()
	if got := names(<-out); len(got) != 1 || got[0] != "default/web-n" {
		t.Errorf("first snapshot %v", got)
	}
	cancel()
	<-done
}
