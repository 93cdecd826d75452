package file

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/textlogger"

	"github.com/berth-dev/berth/internal/source"
)

// waitTimeout bounds every wait; promptLimit is how fast a manifest change
// must show (berth's target: a dropped manifest runs within 2 s).
const (
	waitTimeout = 10 * time.Second
	promptLimit = 2 * time.Second
)

func manifest(name, image string) string {
	return strings.NewReplacer("NAME", name, "IMAGE", image).Replace(`apiVersion: v1
kind: Pod
metadata:
  name: NAME
spec:
  containers:
  - name: c
    image: IMAGE
`)
}

// logLines collects the lines a textlogger writes, so a test can wait for
// one instead of sleeping.
type logLines struct {
	mu    sync.Mutex
	lines []string
	ch    chan struct{} // closed and replaced on every write
}

func newLogLines() *logLines { return &logLines{ch: make(chan struct{})} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	close(l.ch)
	l.ch = make(chan struct{})
	return len(p), nil
}

// count returns how many lines contain every one of subs, and a channel
// closed on the next write.
func (l *logLines) count(subs ...string) (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n, l.ch
}

type harness struct {
	t    *testing.T
	src  *Source
	out  chan []*v1.Pod
	logs *logLines
	last []*v1.Pod
}

// start runs a Source on path until the test ends. The fallback period is an
// hour, so every change the tests see came through inotify.
func start(t *testing.T, path string) *harness {
	t.Helper()
	logs := newLogLines()
	h := &harness{
		t: t,
		src: New(Options{
			Path:     path,
			NodeName: "node",
			Period:   time.Hour,
			Logger:   textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(logs))),
		}),
		out:  make(chan []*v1.Pod),
		logs: logs,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.src.Run(ctx, h.out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// next returns the next snapshot.
func (h *harness) next() []*v1.Pod {
	h.t.Helper()
	select {
	case pods := <-h.out:
		h.last = pods
		return pods
	case <-time.After(waitTimeout):
		h.t.Fatalf("no snapshot within %s; last was %v", waitTimeout, names(h.last))
		return nil
	}
}

// waitFor returns the first snapshot whose pod names are want, failing if
// it takes longer than promptLimit.
func (h *harness) waitFor(want ...string) []*v1.Pod {
	h.t.Helper()
	sort.Strings(want)
	begin := time.Now()
	for {
		pods := h.next()
		if strings.Join(names(pods), ",") == strings.Join(want, ",") {
			if d := time.Since(begin); d > promptLimit {
				h.t.Errorf("snapshot %v took %s, want at most %s", want, d, promptLimit)
			}
			return pods
		}
	}
}

// waitLog waits until the log holds a line containing every one of subs.
func (h *harness) waitLog(subs ...string) {
	h.t.Helper()
	timeout := time.After(waitTimeout)
	for {
		n, changed := h.logs.count(subs...)
		if n > 0 {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			h.t.Fatalf("no log line containing %q within %s", subs, waitTimeout)
		}
	}
}

func names(pods []*v1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// write replaces a file atomically, as careful tools do: a hidden temporary
// file renamed into place.
func write(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func TestRunLifecycle(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir)
	h.waitFor() // first scan: empty, but sent

	a := filepath.Join(dir, "a.yaml")
	write(t, a, manifest("web", "nginx:1"))
	pods := h.waitFor("web-node")
	first := pods[0]
	if first.Annotations[source.AnnotationConfigSeen] == "" || first.Annotations[source.AnnotationConfigSource] != source.SourceFile {
		t.Errorf("annotations = %v", first.Annotations)
	}

	// A changed manifest is a new pod.
	write(t, a, manifest("web", "nginx:2"))
	pods = h.waitFor("web-node")
	if pods[0].UID == first.UID {
		t.Fatalf("UID unchanged after the image changed")
	}
	good := pods[0]

	// A broken manifest keeps its last good pod and is reported once.
	write(t, a, "apiVersion: v1\nkind: Pod\nmetadata: [")
	h.waitLog("Could not read static pod manifest", a)
	if err := h.src.Errors()[a]; err == nil {
		t.Errorf("Errors() = %v, want an error for %s", h.src.Errors(), a)
	}
	// Plain write, not atomic: berth copes with a file being written.
	b := filepath.Join(dir, "b.json")
	if err := os.WriteFile(b, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db"},
		"spec":{"containers":[{"name":"c","image":"postgres:16"}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	pods = h.waitFor("db-node", "web-node")
	for _, p := range pods {
		if p.Name == "web-node" && p != good {
			t.Errorf("broken manifest replaced its pod: UID %s, want %s", p.UID, good.UID)
		}
	}

	// Fixed again: the error goes away.
	write(t, a, manifest("web", "nginx:3"))
	pods = h.waitFor("db-node", "web-node")
	if len(h.src.Errors()) != 0 {
		t.Errorf("Errors() = %v after the fix", h.src.Errors())
	}

	// Hidden files and sub-directories are not manifests.
	write(t, filepath.Join(dir, ".hidden.yaml"), manifest("hidden", "nginx:1"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub", "x.yaml"), manifest("sub", "nginx:1"))
	write(t, filepath.Join(dir, "c.yaml"), manifest("cache", "redis:7"))
	h.waitFor("cache-node", "db-node", "web-node")

	// A deleted manifest takes its pod with it.
	remove(t, a)
	h.waitFor("cache-node", "db-node")
}

func TestRunDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write(t, b, manifest("web", "nginx:2"))
	write(t, a, manifest("web", "nginx:1"))
	h := start(t, dir)
	pods := h.waitFor("web-node")
	if img := pods[0].Spec.Containers[0].Image; img != "nginx:1" {
		t.Errorf("image = %s, want the one of a.yaml", img)
	}
	h.waitLog("already defined by", b)
	if err := h.src.Errors()[b]; err == nil || !strings.Contains(err.Error(), a) {
		t.Errorf("Errors()[b.yaml] = %v, want it to name a.yaml", err)
	}

	// With a.yaml gone, b.yaml's pod takes the name.
	remove(t, a)
	pods = h.waitFor("web-node")
	if img := pods[0].Spec.Containers[0].Image; img != "nginx:2" {
		t.Errorf("image = %s, want the one of b.yaml", img)
	}
	if len(h.src.Errors()) != 0 {
		t.Errorf("Errors() = %v", h.src.Errors())
	}
}

func TestRunDirectoryCreatedLaterAndRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	h := start(t, dir)
	h.waitFor() // the path does not exist: an empty snapshot all the same

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.yaml"), manifest("web", "nginx:1"))
	h.waitFor("web-node")

	remove(t, dir)
	h.waitFor()

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.yaml"), manifest("web", "nginx:1"))
	h.waitFor("web-node")
	// The new directory is watched too.
	write(t, filepath.Join(dir, "b.yaml"), manifest("db", "postgres:16"))
	h.waitFor("db-node", "web-node")
}

func TestRunSingleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.yaml")
	write(t, path, manifest("web", "nginx:1"))
	h := start(t, path)
	first := h.waitFor("web-node")[0]

	write(t, path, manifest("web", "nginx:2"))
	if h.waitFor("web-node")[0].UID == first.UID {
		t.Error("UID unchanged after the image changed")
	}
	// Siblings of the file are not manifests.
	write(t, filepath.Join(filepath.Dir(path), "other.yaml"), manifest("other", "nginx:1"))
	remove(t, path)
	h.waitFor()
}

// TestScanReportsOncePerChange drives scan directly: a broken file is logged
// when it changes, not on every rescan.
func TestScanReportsOncePerChange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.yaml")
	write(t, p, "kind: Deployment")
	logs := newLogLines()
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(logs)))
	s := New(Options{Path: dir, NodeName: "node"})
	st := &scanState{files: map[string]*fileState{}}

	scans := []struct {
		content string // "" leaves the file as it is
		changed bool
		pods    int
		logged  int // error lines about p so far
	}{
		{changed: true, pods: 0, logged: 1},
		{changed: false, pods: 0, logged: 1},
		{content: "kind: Service", changed: false, pods: 0, logged: 2},
		{content: manifest("web", "nginx:1"), changed: true, pods: 1, logged: 2},
		{changed: false, pods: 1, logged: 2},
		{content: "{", changed: false, pods: 1, logged: 3},
		{changed: false, pods: 1, logged: 3},
	}
	for i, sc := range scans {
		if sc.content != "" {
			write(t, p, sc.content)
		}
		pods, changed := s.scan(logger, st)
		if changed != sc.changed || len(pods) != sc.pods {
			t.Errorf("scan %d: changed = %v with %d pods, want %v with %d", i, changed, len(pods), sc.changed, sc.pods)
		}
		if n, _ := logs.count("Could not read static pod manifest", p); n != sc.logged {
			t.Errorf("scan %d: %d error lines, want %d", i, n, sc.logged)
		}
	}
}
