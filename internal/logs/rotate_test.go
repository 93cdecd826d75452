package logs

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeRuntime stands in for the CRI runtime: ReopenContainerLog creates a
// new, empty log file, as containerd does.
type fakeRuntime struct {
	mu         sync.Mutex
	containers map[string]*runtimeapi.ContainerStatus
	reopenErr  error
	reopened   []string
	onReopen   chan string // if set, told of every successful reopen
}

func (f *fakeRuntime) ListContainers(_ context.Context, _ *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for id, st := range f.containers {
		out = append(out, &runtimeapi.Container{Id: id, State: st.State})
	}
	return out, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.containers[id]
	if !ok {
		return nil, errors.New("not found")
	}
	return &runtimeapi.ContainerStatusResponse{Status: st}, nil
}

func (f *fakeRuntime) ReopenContainerLog(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reopenErr != nil {
		return f.reopenErr
	}
	f.reopened = append(f.reopened, id)
	if f.onReopen != nil {
		defer func() { f.onReopen <- id }()
	}
	return os.WriteFile(f.containers[id].LogPath, nil, 0o640)
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func readGzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRotateKeepsMaxFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "0.log")
	rt := &fakeRuntime{containers: map[string]*runtimeapi.ContainerStatus{
		"c1": {Id: "c1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, LogPath: log},
	}}
	clk := clocktesting.NewFakeClock(time.Date(2024, 1, 2, 15, 4, 5, 0, time.Local))
	m, err := New(Options{Runtime: rt, MaxSize: 10, MaxFiles: 3, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	writeFile(t, log, "short\n") // below MaxSize: stays
	if err := m.RotateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); strings.Join(got, " ") != "0.log" {
		t.Fatalf("rotated a small log: %v", got)
	}

	for i, content := range []string{"first-long-content\n", "second-long-content\n", "third-long-content\n"} {
		writeFile(t, log, content)
		clk.Step(10 * time.Second)
		if err := m.RotateOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if len(rt.reopened) != i+1 {
			t.Fatalf("reopened %d times after rotation %d", len(rt.reopened), i+1)
		}
	}
	want := []string{"0.log", "0.log.20240102-150425.gz", "0.log.20240102-150435"}
	if got := listDir(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
	if got := readGzip(t, filepath.Join(dir, want[1])); got != "second-long-content\n" {
		t.Errorf("compressed file holds %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, want[2])); string(b) != "third-long-content\n" {
		t.Errorf("newest rotated file holds %q", b)
	}
	if b, _ := os.ReadFile(log); len(b) != 0 {
		t.Errorf("current log holds %q after reopen", b)
	}
}

func TestRotateCleansLeftoversAndSkipsStopped(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "1.log")
	stopped := filepath.Join(dir, "2.log")
	rt := &fakeRuntime{containers: map[string]*runtimeapi.ContainerStatus{
		"run":  {Id: "run", State: runtimeapi.ContainerState_CONTAINER_RUNNING, LogPath: log},
		"exit": {Id: "exit", State: runtimeapi.ContainerState_CONTAINER_EXITED, LogPath: stopped},
	}}
	writeFile(t, log, "0123456789abcdef\n")
	writeFile(t, stopped, "0123456789abcdef\n")
	// Leftovers of an interrupted rotation: a temporary file and a plain
	// file whose compressed copy was completed.
	writeFile(t, log+".20240101-000000.gz.tmp", "x")
	writeFile(t, log+".20240101-000001", "x")
	writeFile(t, log+".20240101-000001.gz", "x")
	clk := clocktesting.NewFakeClock(time.Date(2024, 1, 2, 0, 0, 0, 0, time.Local))
	m, err := New(Options{Runtime: rt, MaxSize: 5, MaxFiles: 5, MaxWorkers: 2, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RotateOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"1.log", "1.log.20240101-000001.gz", "1.log.20240102-000000", "2.log"}
	if got := listDir(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
}

func TestRotateReopenFailureRestoresLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "0.log")
	rt := &fakeRuntime{
		containers: map[string]*runtimeapi.ContainerStatus{"c": {Id: "c", State: runtimeapi.ContainerState_CONTAINER_RUNNING, LogPath: log}},
		reopenErr:  errors.New("runtime says no"),
	}
	writeFile(t, log, "0123456789abcdef\n")
	m, err := New(Options{Runtime: rt, MaxSize: 5, MaxFiles: 2, Clock: clocktesting.NewFakeClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RotateOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); strings.Join(got, " ") != "0.log" {
		t.Fatalf("files %v, want the log put back", got)
	}
	if b, _ := os.ReadFile(log); string(b) != "0123456789abcdef\n" {
		t.Errorf("log content %q lost", b)
	}
}

func TestRotateReopensMissingLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "0.log")
	rt := &fakeRuntime{containers: map[string]*runtimeapi.ContainerStatus{"c": {Id: "c", State: runtimeapi.ContainerState_CONTAINER_RUNNING, LogPath: log}}}
	m, err := New(Options{Runtime: rt, MaxSize: 5, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RotateOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rt.reopened) != 1 {
		t.Fatalf("reopen calls %v, want one for the missing log", rt.reopened)
	}
	if _, err := os.Stat(log); err != nil {
		t.Errorf("log not recreated: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	rt := &fakeRuntime{}
	if _, err := New(Options{Runtime: rt, MaxSize: 10, MaxFiles: 1}); err == nil {
		t.Error("MaxFiles 1 accepted")
	}
	if _, err := New(Options{MaxSize: 10, MaxFiles: 5}); err == nil {
		t.Error("nil runtime accepted")
	}
	m, err := New(Options{Runtime: rt, MaxSize: 0})
	if err != nil {
		t.Fatalf("disabled rotation refused: %v", err)
	}
	if err := m.RotateOnce(context.Background()); err != nil {
		t.Errorf("disabled rotation: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "0.log")
	writeFile(t, log, "0123456789abcdef\n")
	rt := &fakeRuntime{
		containers: map[string]*runtimeapi.ContainerStatus{"c": {Id: "c", State: runtimeapi.ContainerState_CONTAINER_RUNNING, LogPath: log}},
		onReopen:   make(chan string, 1),
	}
	clk := clocktesting.NewFakeClock(time.Date(2024, 1, 2, 0, 0, 0, 0, time.Local))
	m, err := New(Options{Runtime: rt, MaxSize: 5, MaxFiles: 2, Interval: 10 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	// The ticker exists once Run waits on it; one tick makes one pass.
	for !clk.HasWaiters() {
		runtime.Gosched()
	}
	clk.Step(10 * time.Second)
	if id := <-rt.onReopen; id != "c" {
		t.Fatalf("reopened %q", id)
	}
	cancel()
	<-done
}

func TestParseMaxSize(t *testing.T) {
	for in, want := range map[string]int64{"10Mi": 10 << 20, "1Gi": 1 << 30, "500": 500, "-1": -1} {
		if got, err := ParseMaxSize(in); err != nil || got != want {
			t.Errorf("ParseMaxSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseMaxSize("ten megs"); err == nil {
		t.Error("nonsense accepted")
	}
}
