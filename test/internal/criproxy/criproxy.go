// Package criproxy is a CRI proxy for the integration tests: it stands
// between berth and a real containerd and passes every call (unary or
// streaming) through undecoded, optionally delayed, or with a response
// rewritten. While containerd is down its calls fail as berth's own would
// (Unavailable).
package criproxy

import (
	"errors"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Options configures a Proxy.
type Options struct {
	// Delay holds every call this long before it is passed on: a slow
	// runtime.
	Delay time.Duration
	// Rewrite, when set, may change each response message of method (its
	// protobuf encoding); it returns the message to send.
	Rewrite func(method string, msg []byte) ([]byte, error)
}

// Proxy serves on a unix socket until Stop.
type Proxy struct {
	// Endpoint is the unix:// address to give berth.
	Endpoint string
	opts     Options
	srv      *grpc.Server
	conn     *grpc.ClientConn
}

// Start serves a proxy to the CRI endpoint target (unix://...) on the
// socket path sock.
func Start(sock, target string, opts Options) (*Proxy, error) {
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		lis.Close()
		return nil, err
	}
	p := &Proxy{Endpoint: "unix://" + sock, opts: opts, conn: conn}
	p.srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		return p.forward(ss)
	}))
	go func() { _ = p.srv.Serve(lis) }()
	return p, nil
}

// Stop ends every call and closes the connection to the runtime.
func (p *Proxy) Stop() {
	p.srv.Stop()
	p.conn.Close()
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

// forward passes one call on to the runtime.
func (p *Proxy) forward(ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	if d := p.opts.Delay; d > 0 {
		select {
		case <-time.After(d):
		case <-ss.Context().Done():
			return ss.Context().Err()
		}
	}
	cs, err := p.conn.NewStream(ss.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodec(rawCodec{}))
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
		if p.opts.Rewrite != nil {
			if f.b, err = p.opts.Rewrite(method, f.b); err != nil {
				return err
			}
		}
		if err := ss.SendMsg(&f); err != nil {
			return err
		}
	}
}
