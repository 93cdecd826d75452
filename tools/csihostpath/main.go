// Command csihostpath is berth's CSI test driver: a real CSI driver (the
// CSI spec's Identity, Controller and Node services) whose volumes are
// directories under --data-dir, bind-mounted into place. It registers
// with the kubelet as node-driver-registrar does: a pluginregistration/v1
// socket in the kubelet's plugins_registry that names the driver's CSI
// socket. external-provisioner talks to the same CSI socket for
// CreateVolume and DeleteVolume.
//
// It serves the tests; it is not for production (no quota, no access
// control beyond the file system's).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

func main() {
	var o options
	flag.StringVar(&o.name, "name", "hostpath.csi.berth.dev", "the driver's name")
	flag.StringVar(&o.endpoint, "endpoint", "", "path of the CSI socket to serve")
	flag.StringVar(&o.registrationDir, "registration-dir", "", "the kubelet's plugins_registry; empty: do not register")
	flag.StringVar(&o.dataDir, "data-dir", "", "where volumes are kept")
	flag.StringVar(&o.nodeID, "node-id", "", "the node ID NodeGetInfo reports")
	flag.Int64Var(&o.maxVolumes, "max-volumes", 0, "max volumes per node NodeGetInfo reports (0: no limit)")
	flag.StringVar(&o.topologyKey, "topology-key", "", "a topology key; its value is the node ID (empty: no topology)")
	flag.BoolVar(&o.stage, "stage", true, "offer STAGE_UNSTAGE_VOLUME")
	klog.InitFlags(nil)
	flag.Parse()
	if o.endpoint == "" || o.dataDir == "" || o.nodeID == "" {
		fmt.Fprintln(os.Stderr, "csihostpath: --endpoint, --data-dir and --node-id are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		klog.ErrorS(err, "csihostpath failed")
		os.Exit(1)
	}
}

type options struct {
	name, endpoint, registrationDir, dataDir, nodeID, topologyKey string
	maxVolumes                                                    int64
	stage                                                         bool
}

// run serves the CSI socket and, with a registration dir, the
// registration socket, until ctx ends; both sockets are removed then, so
// the kubelet sees the driver go.
func run(ctx context.Context, o options) error {
	d := &driver{opts: o}
	if err := os.MkdirAll(d.volumesDir(), 0o750); err != nil {
		return err
	}
	csiSrv := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	csipb.RegisterIdentityServer(csiSrv, d)
	csipb.RegisterControllerServer(csiSrv, d)
	csipb.RegisterNodeServer(csiSrv, d)
	csiLis, err := listen(o.endpoint)
	if err != nil {
		return err
	}
	defer os.Remove(o.endpoint)
	errc := make(chan error, 2)
	go func() { errc <- csiSrv.Serve(csiLis) }()
	defer csiSrv.Stop()

	if o.registrationDir != "" {
		// node-driver-registrar's socket name: <driver>-reg.sock.
		regPath := filepath.Join(o.registrationDir, o.name+"-reg.sock")
		regSrv := grpc.NewServer()
		registerapi.RegisterRegistrationServer(regSrv, &registration{name: o.name, endpoint: o.endpoint})
		regLis, err := listen(regPath)
		if err != nil {
			return err
		}
		defer os.Remove(regPath)
		go func() { errc <- regSrv.Serve(regLis) }()
		defer regSrv.Stop()
	}
	klog.InfoS("Serving", "driver", o.name, "endpoint", o.endpoint, "registrationDir", o.registrationDir)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", path)
}

func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		klog.ErrorS(err, "CSI call failed", "method", info.FullMethod, "request", req)
	} else {
		klog.V(2).InfoS("CSI call", "method", info.FullMethod, "request", req)
	}
	return resp, err
}

// registration is node-driver-registrar's side of plugin registration.
type registration struct {
	registerapi.UnimplementedRegistrationServer
	name, endpoint string
}

func (r *registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.name,
		Endpoint:          r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (r *registration) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if st.PluginRegistered {
		klog.InfoS("Registered with the kubelet", "driver", r.name)
	} else {
		klog.ErrorS(errors.New(st.Error), "The kubelet refused the registration", "driver", r.name)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
