package prober

import (
	"github.com/berth-dev/berth/internal/container"

	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
)

// tcp succeeds when a connection to the port opens.
func (pr *prober) tcp(ctx context.Context, a *v1.TCPSocketAction, t target, timeout time.Duration) (outcome, error) {
	port, err := container.ResolvePort(a.Port, t.container)
	if err != nil {
		return outcome{}, err
	}
	host := a.Host
	if host == "" {
		host = t.podIP
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dialer().DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return outcome{result: failure, output: err.Error()}, nil
	}
	_ = conn.Close()
	return outcome{result: success}, nil
}

// grpc asks the standard health service (grpc.health.v1.Health/Check) of
// the pod's port; only SERVING is success. Messages are upstream's.
func (pr *prober) grpc(ctx context.Context, a *v1.GRPCAction, t target, timeout time.Duration) (outcome, error) {
	addr := net.JoinHostPort(t.podIP, strconv.Itoa(int(a.Port)))
	creds := insecure.NewCredentials()
	if a.Mode != nil && *a.Mode == v1.GRPCProbeModeTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	}
	// passthrough: the address is an IP and port, nothing to resolve.
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent(userAgent),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialer().DialContext(ctx, "tcp", addr)
		}),
	)
	if err != nil {
		return outcome{result: failure, output: fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err)}, nil
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	// A refused connection fails at once (Unavailable), like the HTTP and
	// TCP probes, where upstream's blocking dial waits out the timeout.
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		st, _ := grpcstatus.FromError(err)
		switch st.Code() {
		case codes.Unimplemented:
			return outcome{result: failure, output: "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): " + st.Message()}, nil
		case codes.DeadlineExceeded:
			return outcome{result: failure, output: fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)}, nil
		}
		return outcome{result: failure, output: fmt.Sprintf("error: health rpc probe failed: %+v", err)}, nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return outcome{result: failure, output: fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())}, nil
	}
	return outcome{result: success, output: "service healthy"}, nil
}
