package csi

import (
	"context"
	"fmt"
	"sync"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/apimachinery/pkg/types"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// PluginType is the type under which CSI drivers register
// (pluginregistration/v1 CSIPlugin).
const PluginType = registerapi.CSIPlugin

// csiTimeout bounds one CSI call, and a registration's API updates, as
// upstream's csiTimeout.
const csiTimeout = 2 * time.Minute

// Options configures a Manager.
type Options struct {
	// Client writes the CSINode and the Node's CSI annotation and labels,
	// and reads CSIDrivers, VolumeAttachments and Secrets. Nil in
	// standalone mode: drivers register, but their volumes fail to set up
	// with a clear error (a CSI volume comes from a claim or needs its
	// CSIDriver object).
	Client kubernetes.Interface
	// RootDir is the kubelet root directory (/var/lib/kubelet).
	RootDir string
	// NodeName is this node.
	NodeName string
}

// Manager is the kubelet's CSI volume plugin: the registration handler for
// CSI drivers, and the stage/publish/unpublish/unstage of their volumes.
// Safe for concurrent use.
type Manager struct {
	client   kubernetes.Interface
	rootDir  string
	nodeName string

	mu      sync.Mutex
	drivers map[string]*driver
	// published: the volumes SetUp published, per pod, for stats.
	published map[types.UID]map[string]publishedVolume

	// nodeMu serializes the read-modify-write updates of the Node and
	// CSINode by registrations.
	nodeMu sync.Mutex
	// volLocks serializes stage, publish, unpublish and unstage of one
	// volume (driver + handle), so an unstage never races a new publish.
	volLocks keyedMutex
}

// New returns a Manager.
func New(opts Options) *Manager {
	if opts.RootDir == "" {
		opts.RootDir = "/var/lib/kubelet"
	}
	return &Manager{
		client:    opts.Client,
		rootDir:   opts.RootDir,
		nodeName:  opts.NodeName,
		drivers:   make(map[string]*driver),
		published: make(map[types.UID]map[string]publishedVolume),
	}
}

// ValidatePlugin checks a CSI driver's registration: a supported CSI
// version, and none higher already registered under the name.
func (m *Manager) ValidatePlugin(name, endpoint string, versions []string) error {
	klog.InfoS("Trying to validate a new CSI Driver", "driver", name, "endpoint", endpoint, "versions", versions)
	if _, err := m.validateVersions(name, versions); err != nil {
		return fmt.Errorf("validation failed for CSI Driver %s at endpoint %s: %w", name, endpoint, err)
	}
	return nil
}

func (m *Manager) validateVersions(name string, versions []string) (*utilversion.Version, error) {
	v, err := highestVersion(name, versions)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	old := m.drivers[name]
	m.mu.Unlock()
	if old != nil && !old.version.LessThan(v) {
		// Upstream refuses a re-registration at the same version too; but a
		// driver restarted with a new socket must be able to come back, so
		// the same version replaces the old registration.
		if v.LessThan(old.version) {
			return nil, fmt.Errorf("another driver with the same name is already registered with a higher supported version: %q", old.version)
		}
	}
	return v, nil
}

// RegisterPlugin connects to the driver, asks for its node capabilities
// and NodeGetInfo, and publishes the node ID, topology and volume limit on
// the Node and the CSINode. On failure nothing stays registered, and the
// registrar is told (it retries).
func (m *Manager) RegisterPlugin(name, endpoint string, versions []string) error {
	logger := klog.Background().WithValues("driver", name, "endpoint", endpoint)
	logger.Info("Registering CSI driver")
	v, err := m.validateVersions(name, versions)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), csiTimeout)
	defer cancel()
	d, err := dialDriver(ctx, name, endpoint, v)
	if err != nil {
		return err
	}
	resp, err := d.node.NodeGetInfo(ctx, &csipb.NodeGetInfoRequest{})
	if err != nil {
		d.conn.Close()
		return fmt.Errorf("NodeGetInfo of CSI driver %s: %w", name, err)
	}
	info := nodeInfo{nodeID: resp.GetNodeId(), maxVolume: resp.GetMaxVolumesPerNode()}
	if t := resp.GetAccessibleTopology(); t != nil {
		info.topology = t.GetSegments()
	}
	if info.nodeID == "" {
		d.conn.Close()
		return fmt.Errorf("error adding CSI driver node info: driverNodeID must not be empty")
	}

	m.mu.Lock()
	old := m.drivers[name]
	m.drivers[name] = d
	m.mu.Unlock()
	if old != nil && old.conn != nil {
		old.conn.Close()
	}
	if m.client != nil {
		if err := m.installDriver(ctx, name, info); err != nil {
			m.forget(name, d)
			return err
		}
	}
	logger.Info("Registered CSI driver", "nodeID", info.nodeID, "maxVolumes", info.maxVolume, "topology", info.topology,
		"stageUnstage", d.caps.stageUnstage, "volumeStats", d.caps.volumeStats, "expand", d.caps.expand)
	return nil
}

// DeRegisterPlugin forgets a driver whose registration socket went away
// and removes it from the Node and the CSINode. Its volumes stay mounted;
// they are unpublished when the driver is back.
func (m *Manager) DeRegisterPlugin(name, endpoint string) {
	logger := klog.Background().WithValues("driver", name, "endpoint", endpoint)
	m.mu.Lock()
	d := m.drivers[name]
	if d == nil || d.endpoint != endpoint {
		// Already replaced by a newer registration at another socket.
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.forget(name, d)
	if m.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), csiTimeout)
		defer cancel()
		if err := m.uninstallDriver(ctx, name); err != nil {
			logger.Error(err, "Cannot remove the CSI driver from the Node and CSINode")
		}
	}
	logger.Info("Deregistered CSI driver")
}

// forget drops d if it is still the registration of name.
func (m *Manager) forget(name string, d *driver) {
	m.mu.Lock()
	if m.drivers[name] == d {
		delete(m.drivers, name)
	}
	m.mu.Unlock()
	d.conn.Close()
}

// driver returns the registered driver of that name.
func (m *Manager) driver(name string) (*driver, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.drivers[name]
	if d == nil {
		return nil, fmt.Errorf("driver name %s %w", name, errDriverNotFound)
	}
	return d, nil
}

// keyedMutex is a set of mutexes by key, each dropped when unused.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyedLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
