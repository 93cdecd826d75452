package devicemanager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/berth-dev/berth/internal/devicemanager/checkpoint"
)

// registration serves the Registration service on kubelet.sock.
type registration struct {
	pluginapi.UnimplementedRegistrationServer
	m *Manager
}

// Register connects to the plugin at <dir>/<endpoint>; the plugin is told
// of a failure as the call's error, with upstream's messages.
func (r registration) Register(ctx context.Context, req *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	logger := r.m.logger.WithValues("resourceName", req.ResourceName)
	logger.Info("Got registration request from device plugin with resource")
	if !slices.Contains(pluginapi.SupportedVersions[:], req.Version) {
		err := fmt.Errorf("requested device plugin version %s is not supported, supported versions: %v", req.Version, pluginapi.SupportedVersions)
		logger.Error(err, "Bad registration request from device plugin")
		return &pluginapi.Empty{}, err
	}
	if !isExtendedResource(req.ResourceName) {
		err := fmt.Errorf("the ResourceName %q is invalid", req.ResourceName)
		logger.Error(err, "Bad registration request from device plugin")
		return &pluginapi.Empty{}, err
	}
	if err := r.m.connectPlugin(req.ResourceName, filepath.Join(r.m.dir, req.Endpoint)); err != nil {
		logger.Error(err, "Error connecting to device plugin client")
		return &pluginapi.Empty{}, err
	}
	return &pluginapi.Empty{}, nil
}

// serve listens on kubelet.sock after removing the sockets of the plugins
// registered with the previous berth: a plugin watches for that and
// registers again (upstream's protocol for a kubelet restart).
func (m *Manager) serve(ctx context.Context) (stop func(), err error) {
	if err := os.MkdirAll(m.dir, 0o750); err != nil {
		return nil, fmt.Errorf("device plugin directory %s: %w", m.dir, err)
	}
	if err := cleanSockets(m.logger, m.dir); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", filepath.Join(m.dir, KubeletSocket))
	if err != nil {
		return nil, fmt.Errorf("device plugin registration socket: %w", err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, registration{m: m})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			m.logger.Error(err, "Device plugin registration server failed; no device plugin can register")
		}
	}()
	return func() { srv.Stop(); <-done }, nil
}

// KubeletSocket is the registration socket's name in the directory.
const KubeletSocket = "kubelet.sock"

// cleanSockets removes every socket in dir (not the checkpoint, not
// directories), as upstream's CleanupPluginDirectory.
func cleanSockets(logger klog.Logger, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("device plugin directory %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.Name() == checkpoint.FileName || e.Type()&os.ModeSocket == 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			logger.Error(err, "Failed to remove file", "path", filepath.Join(dir, e.Name()))
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WatcherHandler is the handler for plugins of type DevicePlugin that
// register through plugins_registry (pluginmanager.Handler).
func (m *Manager) WatcherHandler() watcherHandler { return watcherHandler{m} }

type watcherHandler struct{ m *Manager }

func (h watcherHandler) ValidatePlugin(name, endpoint string, versions []string) error {
	if !slices.ContainsFunc(versions, func(v string) bool { return slices.Contains(pluginapi.SupportedVersions[:], v) }) {
		return fmt.Errorf("manager version, %s, is not among plugin supported versions %v", pluginapi.Version, versions)
	}
	if !isExtendedResource(name) {
		return fmt.Errorf("invalid name of device plugin socket: %s", fmt.Sprintf("the ResourceName %q is invalid", name))
	}
	return nil
}

func (h watcherHandler) RegisterPlugin(name, endpoint string, _ []string) error {
	return h.m.connectPlugin(name, endpoint)
}

func (h watcherHandler) DeRegisterPlugin(name, endpoint string) {
	h.m.disconnectPlugin(name, endpoint)
}

// isExtendedResource is upstream's IsExtendedResourceName: a resource name
// with a domain outside kubernetes.io that is valid in a quota's
// "requests." form.
func isExtendedResource(name string) bool {
	native := !strings.Contains(name, "/") || strings.Contains(name, v1.ResourceDefaultNamespacePrefix)
	if native || strings.HasPrefix(name, v1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(v1.DefaultResourceRequestsPrefix+name)) == 0
}
