package dra

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"
	drapbv1 "k8s.io/kubelet/pkg/apis/dra/v1"
	drapbv1beta1 "k8s.io/kubelet/pkg/apis/dra/v1beta1"
)

// PluginType is the type DRA kubelet plugins give in their registration
// (pluginregistration/v1 GetInfo): the pluginmanager hands them to Plugins.
const PluginType = "DRAPlugin"

// servicesSupported are the gRPC services berth speaks: a plugin lists
// those it serves as its "versions".
var servicesSupported = []string{drapbv1.DRAPluginService, drapbv1beta1.DRAPluginService}

// callTimeout bounds each NodePrepareResources / NodeUnprepareResources
// call (upstream's default).
const callTimeout = 45 * time.Second

// Plugins holds the registered DRA kubelet plugins (the pluginmanager's
// handler for type DRAPlugin) and their gRPC connections. Several plugins
// may register for one driver (a rolling update of its DaemonSet); calls
// go to the newest one that is connected, else the newest.
type Plugins struct {
	logger klog.Logger
	// onChange is told a driver's name when its last plugin goes or its
	// first one comes (ResourceSlice clean-up); may be nil.
	onChange func(driver string, registered bool)

	mu    sync.Mutex
	store map[string][]*plugin // driver name → plugins, oldest first
}

// plugin is one registered endpoint of a driver.
type plugin struct {
	driver, endpoint string
	service          string // the chosen gRPC service
	conn             *grpc.ClientConn
}

func newPlugins(logger klog.Logger, onChange func(string, bool)) *Plugins {
	return &Plugins{logger: logger, onChange: onChange, store: map[string][]*plugin{}}
}

// chooseService returns the first service the plugin lists that berth
// speaks (the plugin's order, as upstream).
func chooseService(versions []string) (string, error) {
	if len(versions) == 0 {
		return "", errors.New("empty list of supported gRPC services (aka supported versions)")
	}
	for _, s := range versions {
		if slices.Contains(servicesSupported, s) {
			return s, nil
		}
	}
	return "", fmt.Errorf("none of services supported by the plugin (%q) are supported by the kubelet (%q)", versions, servicesSupported)
}

// ValidatePlugin accepts a plugin that offers a service berth speaks.
func (p *Plugins) ValidatePlugin(name, endpoint string, versions []string) error {
	if _, err := chooseService(versions); err != nil {
		return fmt.Errorf("invalid supported gRPC versions of DRA driver plugin %s at endpoint %s: %w", name, endpoint, err)
	}
	return nil
}

// RegisterPlugin connects to the plugin's endpoint (lazily: the first call
// dials) and makes it the driver's newest plugin.
func (p *Plugins) RegisterPlugin(name, endpoint string, versions []string) error {
	service, err := chooseService(versions)
	if err != nil {
		return fmt.Errorf("invalid supported gRPC versions of DRA driver plugin %s at endpoint %s: %w", name, endpoint, err)
	}
	conn, err := grpc.NewClient("unix:"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("create gRPC connection to DRA driver %s plugin at endpoint %s: %w", name, endpoint, err)
	}
	p.mu.Lock()
	if slices.ContainsFunc(p.store[name], func(pl *plugin) bool { return pl.endpoint == endpoint }) {
		p.mu.Unlock()
		_ = conn.Close()
		return fmt.Errorf("endpoint %s already registered for DRA driver plugin %s", endpoint, name)
	}
	first := len(p.store[name]) == 0
	p.store[name] = append(p.store[name], &plugin{driver: name, endpoint: endpoint, service: service, conn: conn})
	p.mu.Unlock()
	conn.Connect()
	p.logger.Info("Registered DRA plugin", "driverName", name, "endpoint", endpoint, "chosenService", service)
	if first && p.onChange != nil {
		p.onChange(name, true)
	}
	return nil
}

// DeRegisterPlugin forgets the plugin and closes its connection.
func (p *Plugins) DeRegisterPlugin(name, endpoint string) {
	p.mu.Lock()
	plugins := p.store[name]
	i := slices.IndexFunc(plugins, func(pl *plugin) bool { return pl.endpoint == endpoint })
	if i < 0 {
		p.mu.Unlock()
		return
	}
	pl := plugins[i]
	plugins = slices.Delete(plugins, i, i+1)
	last := len(plugins) == 0
	if last {
		delete(p.store, name)
	} else {
		p.store[name] = plugins
	}
	p.mu.Unlock()
	if err := pl.conn.Close(); err != nil {
		p.logger.Error(err, "Closing gRPC connection", "driverName", name, "endpoint", endpoint)
	}
	p.logger.Info("Unregistered DRA plugin", "driverName", name, "endpoint", endpoint)
	if last && p.onChange != nil {
		p.onChange(name, false)
	}
}

// get returns the plugin calls for the driver should go to.
func (p *Plugins) get(driver string) (*plugin, error) {
	if driver == "" {
		return nil, errors.New("DRA driver name is empty")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	plugins := p.store[driver]
	if len(plugins) == 0 {
		return nil, fmt.Errorf("DRA driver %s is not registered", driver)
	}
	for _, pl := range slices.Backward(plugins) {
		if pl.conn.GetState() == connectivity.Ready {
			return pl, nil
		}
	}
	return plugins[len(plugins)-1], nil
}

// closeAll closes every connection (berth stops).
func (p *Plugins) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, plugins := range p.store {
		for _, pl := range plugins {
			_ = pl.conn.Close()
		}
	}
}

func (pl *plugin) prepare(ctx context.Context, req *drapbv1.NodePrepareResourcesRequest) (*drapbv1.NodePrepareResourcesResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	switch pl.service {
	case drapbv1beta1.DRAPluginService:
		c := drapbv1beta1.V1Beta1ClientWrapper{DRAPluginClient: drapbv1beta1.NewDRAPluginClient(pl.conn)}
		return c.NodePrepareResources(ctx, req)
	default:
		return drapbv1.NewDRAPluginClient(pl.conn).NodePrepareResources(ctx, req)
	}
}

func (pl *plugin) unprepare(ctx context.Context, req *drapbv1.NodeUnprepareResourcesRequest) (*drapbv1.NodeUnprepareResourcesResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	switch pl.service {
	case drapbv1beta1.DRAPluginService:
		c := drapbv1beta1.V1Beta1ClientWrapper{DRAPluginClient: drapbv1beta1.NewDRAPluginClient(pl.conn)}
		return c.NodeUnprepareResources(ctx, req)
	default:
		return drapbv1.NewDRAPluginClient(pl.conn).NodeUnprepareResources(ctx, req)
	}
}
