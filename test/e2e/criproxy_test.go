package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/test/internal/criproxy"
)

// criProxy stands between berth and the suite's containerd and passes
// every CRI call through unchanged, except that Version reports another
// runtime name: a test can then tell the name berth learned from the
// runtime from a default.
type criProxy struct {
	endpoint string // unix:// address for berth
}

const versionMethod = "/runtime.v1.RuntimeService/Version"

// startCRIProxy serves a proxy to the suite's containerd until t ends.
func startCRIProxy(t *testing.T, env *environment, name string) *criProxy {
	t.Helper()
	p, err := criproxy.Start(filepath.Join(t.TempDir(), "cri-proxy.sock"), env.endpoint, criproxy.Options{
		Rewrite: func(method string, msg []byte) ([]byte, error) {
			if method != versionMethod {
				return msg, nil
			}
			var v runtimeapi.VersionResponse
			if err := proto.Unmarshal(msg, &v); err != nil {
				return nil, err
			}
			v.RuntimeName = name
			return proto.Marshal(&v)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &criProxy{endpoint: p.Endpoint}
}

// A berth started while its runtime is down learns the runtime's name once
// it answers: container IDs in pod status are "<name>://<id>" with the name
// the runtime reports, not a default.
func TestRuntimeNameLearnedWhenTheRuntimeComesUp(t *testing.T) {
	b := newBerth(t)
	env := b.env
	proxy := startCRIProxy(t, env, "berth-e2e-cri")
	b.endpoint = proxy.endpoint

	env.killContainerd(t)
	b.writePod(shellPod("named", "sleep 3600"))
	b.startWithoutHealth()
	b.eventually(20*time.Second, func() (bool, string) {
		return strings.Contains(b.log(), "Container runtime is not reachable yet"), "berth has not reported the runtime down at start"
	})
	env.restartContainerd(t)

	b.eventually(60*time.Second, b.podCond("named", podRunning))
	p, err := b.pod("named")
	if err != nil || p == nil {
		t.Fatalf("pod gone from /pods: %v", err)
	}
	c := containerStatus(p, "main")
	if c == nil || !strings.HasPrefix(c.ContainerID, "berth-e2e-cri://") {
		t.Fatalf("container ID %q, want the runtime's name %q as its prefix: %s", c.ContainerID, "berth-e2e-cri://", describePod(p))
	}
}
