package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// podServer serves a static pod URL: a PodList, or an error status, to
// requests that carry the expected token.
type podServer struct {
	mu       sync.Mutex
	status   int
	body     []byte
	requests int
}

func (s *podServer) serve(status int, pods ...*v1.Pod) {
	list := v1.PodList{}
	list.APIVersion, list.Kind = "v1", "PodList"
	for _, p := range pods {
		list.Items = append(list.Items, *p)
	}
	b, _ := json.Marshal(list)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, b
}

func (s *podServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.Header.Get("Authorization") != "Bearer url-token" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(s.status)
	_, _ = w.Write(s.body)
}

func (s *podServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TestStaticPodURL: berth runs the pods a static pod URL serves
// (staticPodURL, with staticPodURLHeader), follows changes at
// httpCheckFrequency, and keeps its pods while the URL fails.
func TestStaticPodURL(t *testing.T) {
	srv := &podServer{}
	srv.serve(http.StatusOK, shellPod("url-a", "sleep 3600"), shellPod("url-b", "sleep 3600"))
	ts := httptest.NewServer(srv)
	defer ts.Close()

	b := newBerth(t)
	f, err := os.OpenFile(b.configPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "staticPodURL: %s/pods\nstaticPodURLHeader:\n  Authorization: [\"Bearer url-token\"]\nhttpCheckFrequency: 1s\n", ts.URL)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	b.start()

	a := b.runningContainer("url-a", "main", 20*time.Second)
	b.runningContainer("url-b", "main", 20*time.Second)
	p, err := b.pod("url-a")
	if err != nil || p == nil {
		t.Fatalf("url-a not in /pods: %v", err)
	}
	if src := p.Annotations["kubernetes.io/config.source"]; src != "http" {
		t.Errorf("config.source %q, want http", src)
	}

	// The URL fails: the pods stay.
	srv.serve(http.StatusInternalServerError)
	before := srv.count()
	b.eventually(10*time.Second, func() (bool, string) {
		return srv.count() >= before+2, fmt.Sprintf("%d requests since the URL failed, want 2", srv.count()-before)
	})
	if cs, err := b.env.containersNamed("url-a", "main"); err != nil || len(running(cs)) != 1 || running(cs)[0].Id != a.Id {
		t.Errorf("url-a while the URL fails: %s, %v; want its container running", describeContainers(cs), err)
	}

	// A new list: url-b goes, url-c comes, url-a stays as it was.
	srv.serve(http.StatusOK, shellPod("url-a", "sleep 3600"), shellPod("url-c", "sleep 3600"))
	b.runningContainer("url-c", "main", 20*time.Second)
	b.eventually(20*time.Second, func() (bool, string) {
		cs, err := b.env.containersNamed("url-b", "main")
		return err == nil && len(running(cs)) == 0, fmt.Sprintf("url-b: %s, %v", describeContainers(cs), err)
	})
	if cs, err := b.env.containersNamed("url-a", "main"); err != nil || len(running(cs)) != 1 || running(cs)[0].Id != a.Id {
		t.Errorf("url-a after the list changed: %s, %v; want its first container still running", describeContainers(cs), err)
	}
}
