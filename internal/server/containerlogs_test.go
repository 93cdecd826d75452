package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berth-dev/berth/internal/container"
)

func TestParseLogQuery(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		query string
		code  int
		check func(t *testing.T, q logQuery)
	}{
		{"", 0, func(t *testing.T, q logQuery) {
			if q.opts.Follow || q.previous || q.opts.Timestamps || q.opts.TailLines != nil || q.opts.LimitBytes != nil || !q.opts.Since.IsZero() || q.stream != v1.LogStreamAll {
				t.Errorf("defaults %+v", q)
			}
		}},
		{"follow=true&previous=1&timestamps=", 0, func(t *testing.T, q logQuery) {
			if !q.opts.Follow || !q.previous || !q.opts.Timestamps {
				t.Errorf("booleans %+v", q)
			}
		}},
		{"follow=false&previous=0", 0, func(t *testing.T, q logQuery) {
			if q.opts.Follow || q.previous {
				t.Errorf("false booleans %+v", q)
			}
		}},
		{"tailLines=10&limitBytes=100", 0, func(t *testing.T, q logQuery) {
			if *q.opts.TailLines != 10 || *q.opts.LimitBytes != 100 {
				t.Errorf("numbers %+v", q.opts)
			}
		}},
		{"tail=5", 0, func(t *testing.T, q logQuery) {
			if q.opts.TailLines == nil || *q.opts.TailLines != 5 {
				t.Errorf("legacy tail %+v", q.opts)
			}
		}},
		{"tail=all&tailLines=3", 0, func(t *testing.T, q logQuery) {
			if q.opts.TailLines != nil {
				t.Errorf("tail=all kept %d", *q.opts.TailLines)
			}
		}},
		{"sinceSeconds=60", 0, func(t *testing.T, q logQuery) {
			if !q.opts.Since.Equal(now.Add(-time.Minute)) {
				t.Errorf("since %v", q.opts.Since)
			}
		}},
		{"sinceTime=2024-01-01T00:00:00Z", 0, func(t *testing.T, q logQuery) {
			if !q.opts.Since.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("since %v", q.opts.Since)
			}
		}},
		{"stream=Stderr", 0, func(t *testing.T, q logQuery) {
			if q.stream != v1.LogStreamStderr {
				t.Errorf("stream %q", q.stream)
			}
		}},
		{"tailLines=x", 400, nil},
		{"sinceTime=yesterday", 400, nil},
		{"tailLines=-1", 422, nil},
		{"limitBytes=0", 422, nil},
		{"sinceSeconds=0", 422, nil},
		{"sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z", 422, nil},
		{"stream=Stdout&tailLines=1", 422, nil},
		{"stream=Both", 422, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.query)
			q, code, err := parseLogQuery(v, now)
			if code != tt.code || (err != nil) != (tt.code != 0) {
				t.Fatalf("code %d err %v, want %d", code, err, tt.code)
			}
			if tt.check != nil {
				tt.check(t, q)
			}
		})
	}
}

func cri(i int, stream, msg string) string {
	return fmt.Sprintf("2024-01-02T03:04:%02dZ %s F %s\n", i, stream, msg)
}

// logsFixture is a pod whose container "app" restarted once: c0 exited,
// c1 runs; each has its own log file.
func logsFixture(t testing.TB) (*containerLogs, *fakeRuntime, *v1.Pod) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "0.log"), []byte(cri(1, "stdout", "old-1")+cri(2, "stderr", "old-2")), 0o644)
	os.WriteFile(filepath.Join(dir, "1.log"), []byte(cri(3, "stdout", "new-1")+cri(4, "stderr", "new-2")+cri(5, "stdout", "new-3")), 0o644)
	rt := &fakeRuntime{pods: map[types.UID]*container.PodStatus{"u1": {UID: "u1", Name: "web", Namespace: "default",
		Containers: []*container.ContainerStatus{
			{ID: "c1", Name: "app", State: container.StateRunning, LogPath: filepath.Join(dir, "1.log")},
			{ID: "c0", Name: "app", State: container.StateExited, LogPath: filepath.Join(dir, "0.log")},
		}}}}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app"}, {Name: "sidecar"}}},
		Status: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{
			{Name: "app", ContainerID: "containerd://c1",
				State:                v1.ContainerState{Running: &v1.ContainerStateRunning{}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ContainerID: "containerd://c0"}}},
			{Name: "sidecar", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}},
		}},
	}
	return &containerLogs{pods: podList{pod}, runtime: rt, clock: clocktesting.NewFakeClock(time.Date(2024, 1, 2, 3, 5, 0, 0, time.UTC))}, rt, pod
}

func serveLogs(h http.Handler, path string) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle("GET /containerLogs/{ns}/{pod}/{container}", h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

func TestContainerLogs(t *testing.T) {
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"current", "/containerLogs/default/web/app", 200, "new-1\nnew-2\nnew-3\n"},
		{"previous", "/containerLogs/default/web/app?previous=true", 200, "old-1\nold-2\n"},
		{"tail", "/containerLogs/default/web/app?tailLines=1", 200, "new-3\n"},
		{"limit", "/containerLogs/default/web/app?limitBytes=8", 200, "new-1\nne"},
		{"since", "/containerLogs/default/web/app?sinceTime=2024-01-02T03:04:04Z", 200, "new-2\nnew-3\n"},
		{"timestamps", "/containerLogs/default/web/app?tailLines=1&timestamps=true", 200, "2024-01-02T03:04:05.000000000Z new-3\n"},
		{"stderr only", "/containerLogs/default/web/app?stream=Stderr", 200, "new-2\n"},
		// Followed, but the container has stopped: all of it, then the end.
		{"follow stopped", "/containerLogs/default/web/app?previous=true&follow=true", 200, "old-1\nold-2\n"},
		{"no such pod", "/containerLogs/default/nope/app", 404, "pod \"nope\" does not exist\n"},
		{"no such container", "/containerLogs/default/web/nope", 404, "container \"nope\" not found in pod \"web\"\n"},
		{"waiting", "/containerLogs/default/web/sidecar", 400, "container \"sidecar\" in pod \"web\" is waiting to start: trying and failing to pull image\n"},
		{"bad query", "/containerLogs/default/web/app?tailLines=-3", 422, "{\"message\": \"Invalid request.\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := logsFixture(t)
			rec := serveLogs(h, tt.path)
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.code, tt.body)
			}
		})
	}
}

func TestContainerLogsWithoutStatus(t *testing.T) {
	h, _, pod := logsFixture(t)
	pod.Status = v1.PodStatus{} // berth has not computed a status yet
	if rec := serveLogs(h, "/containerLogs/default/web/app"); rec.Code != 200 || rec.Body.String() != "new-1\nnew-2\nnew-3\n" {
		t.Errorf("current: %d %q", rec.Code, rec.Body.String())
	}
	if rec := serveLogs(h, "/containerLogs/default/web/app?previous=1"); rec.Code != 200 || rec.Body.String() != "old-1\nold-2\n" {
		t.Errorf("previous: %d %q", rec.Code, rec.Body.String())
	}
	if rec := serveLogs(h, "/containerLogs/default/web/sidecar"); rec.Code != 400 {
		t.Errorf("never started: %d %q", rec.Code, rec.Body.String())
	}
}

func TestContainerLogsFollowEndsWhenContainerStops(t *testing.T) {
	h, rt, _ := logsFixture(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.SetPathValue("ns", "default")
		r.SetPathValue("pod", "web")
		r.SetPathValue("container", "app")
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"?follow=true&tailLines=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The first line arrives while the container still runs: the handler
	// flushes as it reads.
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "new-3\n" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	rt.setState("u1", "c1", container.StateExited)
	// The reader polls once per (fake) second; step until the stream ends.
	fc := h.clock.(*clocktesting.FakeClock)
	ended := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(buf)
		ended <- err
	}()
	for {
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("more log after the container stopped")
			}
			return
		case <-ctx.Done():
			t.Fatal("follow did not end after the container stopped")
		default:
			fc.Step(time.Second)
			runtimeGosched()
		}
	}
}
