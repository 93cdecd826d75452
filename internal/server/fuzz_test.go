package server

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/container"
)

// fuzzPaths are the kubelet API's endpoints that read query parameters,
// each with a pod and container that exist.
var fuzzPaths = []string{
	"/containerLogs/default/web/app",
	"/stats/summary",
	"/healthz",
	"/pods",
	"/runningpods/",
	"/metrics",
	"/configz",
	"/exec/default/web/app",
	"/exec/default/web/u1/app",
	"/attach/default/web/app",
	"/run/default/web/app",
}

// FuzzQuery: any query on any endpoint gets an answer, never a panic; a
// 5xx only where upstream answers one too (/stats/summary with a form
// that does not parse: "Internal Error: parse form failed") or from the
// runtime (which refuses every stream here). Following a log is left out:
// it would wait for the container to stop.
func FuzzQuery(f *testing.F) {
	seeds := []string{
		"tailLines=10&limitBytes=100&timestamps=true",
		"tail=all&previous=1&stream=Stderr",
		"sinceSeconds=60&sinceTime=2024-01-01T00:00:00Z",
		"sinceTime=2024-01-01T00:00:00%2B01:00&limitBytes=-1",
		"only_cpu_and_memory=true",
		"verbose&exclude=syncloop",
		"command=sh&command=-c&command=true&stdin=1&stdout=1&tty=1",
		"cmd=ls%20-l",
		"%zz&;&==",
	}
	for i := range fuzzPaths {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	hs, _ := testHandlers(f)
	logs, rt, _ := logsFixture(f)
	hs.Pods, hs.Runtime, hs.Clock = logs.pods, rt, logs.clock
	rt.pods["u1"].Sandboxes = []*container.SandboxStatus{{ID: "sb1", State: container.SandboxReady}}
	// The runtime refuses to stream: the handler's own parsing is what is
	// fuzzed, not an upgrade to a streaming server.
	hs.Streaming = &fakeCRI{err: errors.New("no streaming here")}
	h := NewHandler(hs)
	f.Fuzz(func(t *testing.T, which uint8, rawQuery string) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		req := httptest.NewRequest("GET", path, nil)
		req.URL.RawQuery = rawQuery
		if q, err := url.ParseQuery(rawQuery); err == nil && q.Has("follow") {
			q.Del("follow")
			req.URL.RawQuery = q.Encode()
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && !streamingPath(path) && !strings.Contains(rec.Body.String(), "parse form failed") {
			t.Fatalf("GET %s?%s: %d %q", path, req.URL.RawQuery, rec.Code, rec.Body.String())
		}
	})
}

// streamingPath: /exec, /attach and /run reach the (refusing) runtime, so
// a 5xx is their expected answer to a well-formed query.
func streamingPath(p string) bool {
	return strings.HasPrefix(p, "/exec/") || strings.HasPrefix(p, "/attach/") || strings.HasPrefix(p, "/run/")
}

// FuzzParsePorts: any port list parses into valid ports or is refused.
func FuzzParsePorts(f *testing.F) {
	f.Add("80,443")
	f.Add("0")
	f.Add("65536,-1,,x")
	f.Fuzz(func(t *testing.T, v string) {
		ports, err := parsePorts([]string{v})
		if err != nil {
			return
		}
		for _, p := range ports {
			if p < 1 || p > 65535 {
				t.Fatalf("port %d accepted from %q", p, v)
			}
		}
	})
}
