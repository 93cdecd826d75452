package e2e

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criProxy stands between berth and the suite's containerd and passes
// every CRI call through unchanged, except that Version reports another
// runtime name: a test can then tell the name berth learned from the
// runtime from a default. While containerd is down its calls fail as
// berth's own would (Unavailable).
type criProxy struct {
	endpoint string // unix:// address for berth
	name     string // the runtime name Version reports
}

// rawFrame is one gRPC message, passed on without decoding.
type rawFrame struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*rawFrame).b, nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*rawFrame).b = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

const versionMethod = "/runtime.v1.RuntimeService/Version"

// startCRIProxy serves a proxy to the suite's containerd until t ends.
func startCRIProxy(t *testing.T, env *environment, name string) *criProxy {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri-proxy.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(env.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p := &criProxy{endpoint: "unix://" + sock, name: name}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		return p.forward(conn, ss)
	}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); conn.Close() })
	return p
}

// forward passes one call (unary or streaming) on to containerd.
func (p *criProxy) forward(conn *grpc.ClientConn, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	cs, err := conn.NewStream(ss.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	go func() {
		for {
			var f rawFrame
			if err := ss.RecvMsg(&f); err != nil {
				_ = cs.CloseSend()
				return
			}
			if err := cs.SendMsg(&f); err != nil {
				return
			}
		}
	}()
	for {
		var f rawFrame
		if err := cs.RecvMsg(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if method == versionMethod {
			var v runtimeapi.VersionResponse
			if err := proto.Unmarshal(f.b, &v); err != nil {
				return err
			}
			v.RuntimeName = p.name
			if f.b, err = proto.Marshal(&v); err != nil {
				return err
			}
		}
		if err := ss.SendMsg(&f); err != nil {
			return err
		}
	}
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
