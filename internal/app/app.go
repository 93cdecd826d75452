package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/allocation"
	"github.com/berth-dev/berth/internal/devicemanager"
	"github.com/berth-dev/berth/internal/dra"
	"github.com/berth-dev/berth/internal/kerneltunables"
	"github.com/berth-dev/berth/internal/metrics"
	"github.com/berth-dev/berth/internal/nodeshutdown"
	"github.com/berth-dev/berth/internal/nodestatus"
	"github.com/berth-dev/berth/internal/objects"
	"github.com/berth-dev/berth/internal/oom"
	"github.com/berth-dev/berth/internal/pleg"
	"github.com/berth-dev/berth/internal/pluginmanager"
	"github.com/berth-dev/berth/internal/podworker"
	"github.com/berth-dev/berth/internal/prober"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/source/file"
	"github.com/berth-dev/berth/internal/source/manifesturl"
	"github.com/berth-dev/berth/internal/status"
	"github.com/berth-dev/berth/internal/userns"
	"github.com/berth-dev/berth/internal/volume"
	"github.com/berth-dev/berth/internal/volume/csi"
)

// plegRelistThreshold is how stale the last successful relist may be before
// /healthz reports berth unhealthy (upstream uses 3 minutes).
const plegRelistThreshold = 3 * time.Minute

// Run starts every component and blocks until ctx is cancelled. Cancelling
// stops berth but leaves every pod running, so a restarted berth adopts them.
//
// Components are built in dependency order, each from its options, and
// started only once all are built. Where two components need each other,
// the one built first holds a queue that the other drains (podworker.Wakeups:
// the PLEG, the prober and the volume manager wake pods through it;
// pleg.Watches: the runtime manager tells the PLEG of the containers it
// starts), or a holder the other fills (nodestatus.Published: the Node for
// the volume manager and admission).
func Run(ctx context.Context, opts Options) error {
	logger := klog.FromContext(ctx)
	clk := clock.RealClock{}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}

	// A component that cannot go on ends berth through errc: the servers
	// and the client certificate rotation.
	errc := make(chan error, 3)
	obs := newObservability(opts.NodeName)

	// 0. The kernel settings the kubelet guards, before anything runs.
	if err := kerneltunables.Ensure(logger, utilsysctl.New(), opts.ProtectKernelDefaults); err != nil {
		return fmt.Errorf("kernel tunables (protectKernelDefaults %v): %w", opts.ProtectKernelDefaults, err)
	}

	// 1. The node's credentials (TLS bootstrap, certificate rotation), API
	// clients (none standalone) and the event recorder.
	var clients *apiClients
	if opts.Kubeconfig != "" {
		cfg, err := nodeCredentials(ctx, opts, obs, run, errc)
		if err != nil {
			if ctx.Err() != nil {
				// Stopped while waiting for a client certificate.
				logger.Info("Shutting down before the client certificate was issued")
				return nil
			}
			return err
		}
		if clients, err = newAPIClients(opts, cfg); err != nil {
			return err
		}
		if opts.NodeIP == "" {
			opts.NodeIP = detectNodeIP(logger)
		}
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(2)
	if clients != nil {
		clients.recordEventsToAPI(broadcaster)
	}
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.NodeName})

	// 2. Holders and queues that need nothing.
	wakeups := podworker.NewWakeups()
	watches := pleg.NewWatches()
	node := &nodestatus.Published{}
	statuses := status.NewStore(nil)
	pods := podworker.NewPodSet(logger, statuses)
	// Graceful node shutdown (nil when no period is configured).
	shutdown := nodeshutdown.New(nodeshutdown.Options{
		Periods:  opts.ShutdownGracePeriods,
		Pods:     pods,
		Recorder: recorder,
		NodeRef:  &v1.ObjectReference{Kind: "Node", Name: opts.NodeName, UID: types.UID(opts.NodeName)},
		Clock:    clk,
	})
	cgroups, err := newCgroupManager(logger, opts, pods.ActivePods, recorder)
	if err != nil {
		return fmt.Errorf("set up the node's cgroups: %w", err)
	}
	layout := cgroups.Layout()
	// The resources allocated to the pods and applied to their containers
	// (in-place resize), checkpointed under the root directory.
	allocations, err := allocation.New(opts.RootDir, clk)
	if err != nil {
		return err
	}
	containerOOMs, oomWatcher := containerOOMMonitor(logger)
	// Device plugins: their allocations are checkpointed under the root
	// directory and read back now, before any pod is admitted.
	devices, err := devicemanager.New(logger, devicemanager.Options{Dir: filepath.Join(opts.RootDir, "device-plugins")})
	if err != nil {
		return err
	}

	// 3. Volumes and the objects they read.
	objs := objects.New(objects.Options{Client: clients.podClient()})
	// Node autonomy (berth's own): the API pods and what they read,
	// checkpointed, and read back while the API server is unreachable.
	auto, err := newNodeAutonomy(logger, opts, clients, objs, clk)
	if err != nil {
		return err
	}
	csiVolumes := newCSI(opts, clients)
	vols := volume.New(volume.Options{
		Client:          clients.podClient(),
		Objects:         auto.objects(objs),
		Tokens:          auto.tokens(),
		CSI:             csiVolumes,
		RootDir:         opts.RootDir,
		NodeName:        opts.NodeName,
		NodeAllocatable: node.Allocatable,
		Recorder:        recorder,
		Clock:           clk,
		OnChange:        wakeups.Wake,
		Panics:          obs.panics("volume"),
	})

	// The pods' DRA ResourceClaims, prepared by the drivers' plugins (the
	// runtime gives containers their devices).
	claims, err := newClaims(logger, opts, clients, recorder)
	if err != nil {
		return err
	}

	// 4. The container runtime (connected lazily: it may be down), and
	// the PLEG that watches it.
	pullRecords, verify, err := imageVerification(opts)
	if err != nil {
		return err
	}
	credProviders, err := credentialProviders(opts, clients.podClient())
	if err != nil {
		return err
	}
	usernsManager, err := userNamespaces(logger, opts)
	if err != nil {
		return err
	}
	rt, err := runtime.New(ctx, runtime.Options{
		ContainerGC:           &runtime.GCPolicy{MinAge: opts.MinimumContainerTTL, MaxPerPodContainer: opts.MaxDeadContainersPerContainer},
		UserNamespaces:        usernsManager,
		CgroupLayout:          &layout,
		PodCgroups:            cgroups,
		PodCgroupResizer:      cgroups,
		OOM:                   oomWatcher,
		DisableCPUCFSQuota:    !opts.Cgroups.CPUCFSQuota,
		CPUCFSQuotaPeriod:     opts.Cgroups.CPUCFSQuotaPeriod,
		WrapRuntimeService:    obs.wrapRuntime,
		WrapImageService:      obs.wrapImages,
		OnContainerStarted:    watches.Watch,
		OnContainerStopping:   watches.Unwatch,
		Volumes:               vols,
		Objects:               auto.envObjects(objs, clients),
		Services:              auto.services(clients),
		RuntimeClasses:        clients.runtimeHandlers(),
		NodeAllocatable:       node.Allocatable,
		RuntimeEndpoint:       opts.RuntimeEndpoint,
		ImageEndpoint:         opts.ImageEndpoint,
		RequestTimeout:        opts.RuntimeRequestTimeout,
		RootDir:               opts.RootDir,
		PodLogsDir:            opts.PodLogsDir,
		NodeName:              opts.NodeName,
		NodeIP:                opts.NodeIP,
		ClusterDNS:            opts.ClusterDNS,
		ClusterDomain:         opts.ClusterDomain,
		ResolvConf:            opts.ResolvConf,
		CgroupDriver:          opts.CgroupDriver,
		SeccompDefault:        opts.SeccompDefault,
		MaxParallelImagePulls: opts.MaxParallelImagePulls,
		ImagePullRecords:      pullRecords,
		ImageVerify:           verify,
		CredentialProviders:   credProviders,
		Resources:             allocations,
		ContainerExtras:       containerExtras(claims, devices),
		Recorder:              recorder,
		Clock:                 clk,
	})
	if err != nil {
		return fmt.Errorf("set up container runtime client: %w", err)
	}
	logRuntimeVersion(ctx, rt, opts.RuntimeEndpoint)
	generator := pleg.New(pleg.Options{
		Lister:       obs.metrics.InstrumentRelist(rt, clk),
		Events:       eventSource{rt},
		PIDs:         rt,
		RelistPeriod: time.Second,
		Consumer:     wakeups,
		Watches:      watches,
		Clock:        clk,
	})
	if err := obs.registerRuntimeCounts(generator.RuntimePods); err != nil {
		return err
	}
	health := healthCheck(generator, clk)
	resources, err := newNodeResources(opts, rt, pods, pullRecords, recorder, obs.metrics.Evictions, csiVolumeStats{csiVolumes}, clk)
	if err != nil {
		return err
	}

	// Node plugins register through <root>/plugins_registry; each plugin
	// type's handler is added here, before Run.
	plugins := pluginmanager.New(pluginmanager.Options{Dir: filepath.Join(opts.RootDir, "plugins_registry")})
	plugins.AddHandler(registerapi.DevicePlugin, devices.WatcherHandler())
	plugins.AddHandler(csi.PluginType, csiVolumes)
	if claims != nil {
		plugins.AddHandler(dra.PluginType, claims.Plugins())
	}

	// 5. Probes, pod start metrics, and the API side (node, pods, status,
	// mirror pods) that follows the pod set.
	probes := prober.New(prober.Options{
		Exec:     prober.ExecFromCRI(rt),
		Recorder: recorder,
		Clock:    clk,
		OnChange: wakeups.Wake,
		Metrics:  obs.probes,
		Panics:   obs.panics("prober"),
	})
	var api *apiComponents
	if clients != nil {
		api = newAPIComponents(clients, opts, apiDeps{
			clock: clk, runtime: rt, health: health, node: node, pods: pods, statuses: statuses,
			pressure: resources.evictions.Conditions, devices: devices,
			shuttingDown: shutdown.ShuttingDown,
		})
	}
	events := &podEvents{starts: obs.metrics.NewPodStartTracker(clk), api: api, autonomy: auto, devices: devices}

	// 6. The pod workers: they keep the pod set, fed by the sources, and
	// admit new pods.
	security, err := newPodSecurity(opts)
	if err != nil {
		return err
	}
	admit, err := podAdmission(logger, opts, api, security, resources.evictions.Conditions, devices, shutdown)
	if err != nil {
		return err
	}
	workers := podworker.New(podworker.Options{
		Pods:           pods,
		Sources:        podSources(opts, api, auto, security, refusedManifest(logger, recorder, opts.NodeName)),
		Runtime:        rt,
		Status:         statuses,
		Volumes:        vols,
		Claims:         workerClaims(claims),
		Prober:         probes,
		Admitter:       admit,
		ResizeAdmitter: admit,
		PodCgroups:     cgroups,
		Allocation:     allocations,
		Recorder:       recorder,
		Listener:       events,
		Observer:       generator,
		Wakeups:        wakeups,
		NodeIPs:        nodeIPs(opts),
		ResyncPeriod:   opts.SyncFrequency,
		Clock:          clk,
		Panics:         obs.panics("pod_worker"),
	})

	// 7. Start everything; then the servers. The node's cgroups come
	// first: no pod may start before its parents exist with their limits.
	if err := cgroups.Start(ctx, run); err != nil {
		return fmt.Errorf("start the cgroup manager: %w", err)
	}
	run(func() { oom.NewWatcher(oom.Options{Recorder: recorder, NodeName: opts.NodeName}).Run(ctx) })
	if containerOOMs != nil {
		run(func() { containerOOMs.Run(ctx) })
	}
	run(func() { objs.Run(ctx, auto.subscriber(vols)) })
	auto.run(ctx, run)
	run(func() { vols.Run(ctx) })
	run(func() { allocations.Run(ctx) })
	if clients != nil {
		run(func() {
			if err := csiVolumes.InitCSINode(ctx); err != nil && ctx.Err() == nil {
				logger.Error(err, "Cannot initialize the CSINode")
			}
		})
	}
	run(func() { generator.Run(ctx) })
	run(func() { probes.Run(ctx) })
	if api != nil {
		api.run(ctx, run)
	}
	if claims != nil {
		run(func() { claims.Run(ctx) })
	}
	run(func() { workers.Run(ctx) })
	if shutdown != nil {
		run(func() { shutdown.Run(ctx, workers, api.syncNodeStatus) })
	}
	run(func() {
		if err := devices.Run(ctx, workers.SourcesReady); err != nil {
			logger.Error(err, "Device plugin registration stopped; no device plugin can register at kubelet.sock")
		}
	})
	run(func() {
		if err := plugins.Run(ctx); err != nil {
			logger.Error(err, "Plugin registration stopped; no CSI, DRA or device plugin can register")
		}
	})
	resources.run(ctx, run, workers)

	if err := startObservers(ctx, run, errc, kubeletAPIDeps{
		opts: opts, obs: obs, runtime: rt, pods: pods, health: health, api: api, collector: resources.collector,
	}); err != nil {
		return err
	}
	if opts.ReadOnlyPort > 0 {
		addr := net.JoinHostPort(opts.ReadOnlyAddress, strconv.Itoa(int(opts.ReadOnlyPort)))
		logger.Info("Serving the read-only API", "address", "http://"+addr, "paths", "/healthz /pods")
		run(func() {
			h := obs.metrics.InstrumentHandler("readonly", server.NewReadOnlyHandler(pods, health))
			if err := server.Serve(ctx, addr, h); err != nil {
				errc <- fmt.Errorf("read-only server: %w", err)
			}
		})
	}

	select {
	case <-ctx.Done():
		logger.Info("Shutting down; pods keep running")
		return nil
	case err := <-errc:
		return err
	}
}

// logRuntimeVersion says which runtime berth talks to, or that it does
// not answer yet (berth keeps retrying and learns its name once it does).
func logRuntimeVersion(ctx context.Context, rt *runtime.Manager, endpoint string) {
	logger := klog.FromContext(ctx)
	if name, version, err := rt.Version(ctx); err != nil {
		logger.Error(err, "Container runtime is not reachable yet; berth keeps retrying", "endpoint", endpoint)
	} else {
		logger.Info("Connected to container runtime", "runtime", name, "version", version, "endpoint", endpoint)
	}
}

// healthCheck is berth's health as /healthz and the node's Ready condition
// report it: the runtime answers and the PLEG relists.
func healthCheck(generator *pleg.PLEG, clk clock.PassiveClock) func() error {
	return func() error {
		if err := generator.RuntimeError(); err != nil {
			return fmt.Errorf("container runtime is down: %w", err)
		}
		if ok, err := generator.Healthy(clk.Now(), plegRelistThreshold); !ok {
			return fmt.Errorf("PLEG is not healthy: %w", err)
		}
		return nil
	}
}

// podSources are the pod sources configured: the static pod directory, the
// static pod URL and the API server.
func podSources(opts Options, api *apiComponents, auto *nodeAutonomy, security podSecurity, onRefused func(string, *v1.Pod, *v1.Pod, error)) []podworker.Source {
	var sources []podworker.Source
	if opts.StaticPodPath != "" {
		fo := file.Options{Path: opts.StaticPodPath, NodeName: opts.NodeName, Period: opts.FileCheckFrequency}
		if security.static != nil {
			fo.Screen, fo.OnRefused = security.screen, onRefused
			fo.AllowedDir = filepath.Join(opts.RootDir, "static-pod-security")
		}
		files := file.New(fo)
		sources = append(sources, podworker.Source{Name: source.SourceFile, Run: files.Run})
	}
	if opts.StaticPodURL != "" {
		urls := manifesturl.New(manifesturl.Options{
			URL: opts.StaticPodURL, Header: opts.StaticPodURLHeader, NodeName: opts.NodeName, Period: opts.HTTPCheckFrequency,
		})
		sources = append(sources, podworker.Source{Name: source.SourceHTTP, Run: urls.Run})
	}
	if api != nil {
		run, complete := auto.podSource(api)
		sources = append(sources, podworker.Source{Name: source.SourceAPI, Run: run, Complete: complete})
	}
	return sources
}

// nodeIPs are the node's addresses, primary first: one, or a dual-stack
// pair.
func nodeIPs(opts Options) []string {
	if opts.NodeIP == "" {
		return nil
	}
	return strings.Split(opts.NodeIP, ",")
}

// podEvents passes the pod set's events on to those who follow it.
type podEvents struct {
	starts   *metrics.PodStartTracker
	api      *apiComponents // nil standalone
	autonomy *nodeAutonomy  // nil without node autonomy
	devices  *devicemanager.Manager
	shutdown *nodeshutdown.Manager // nil without graceful node shutdown
}

var _ podworker.Listener = (*podEvents)(nil)

func (e *podEvents) PodSeen(pod *v1.Pod) {
	e.starts.Seen(pod)
	if e.api != nil {
		// The API status is reconciled with the newest API object
		// (readiness gates, deletion requests).
		e.api.statusSyncer.Enqueue(pod.UID)
	}
}

func (e *podEvents) StatusChanged(pod *v1.Pod, st *v1.PodStatus) {
	// The desired pod carries the API's last status: its phase is the
	// "before" of this change.
	e.starts.StatusComputed(pod, pod.Status.Phase, st)
	e.autonomy.statusChanged(pod, st)
	if e.api != nil {
		e.api.statusSyncer.Enqueue(pod.UID)
	}
}

func (e *podEvents) PodTerminated(uid types.UID, pod *v1.Pod) {
	e.starts.Forget(uid)
	// The pod's containers are gone: so is its hold on devices.
	e.devices.PodTerminated(string(uid))
	e.shutdown.PodTerminated(uid)
	if e.api != nil && pod != nil {
		e.api.statusSyncer.PodTerminated(pod)
	}
}

func (e *podEvents) StaticPodsChanged() {
	if e.api != nil {
		e.api.triggerMirrorSync()
	}
}

// eventSource adapts the runtime's container event stream to the PLEG.
type eventSource struct{ rt *runtime.Manager }

func (e eventSource) WatchContainerEvents(ctx context.Context, onEvent func(types.UID)) error {
	err := e.rt.WatchContainerEvents(ctx, onEvent)
	if errors.Is(err, runtime.ErrEventsUnsupported) {
		return fmt.Errorf("%w: %w", pleg.ErrEventsUnsupported, err)
	}
	return err
}

// userNamespaces is the manager of pods' user namespace ID ranges, built
// as upstream's kubelet builds it at start-up (an unusable range stops
// berth): userNamespaces.idsPerPod IDs per pod from the "kubelet" user's
// subordinate IDs, or from everything above the first block.
func userNamespaces(logger klog.Logger, opts Options) (*userns.Manager, error) {
	r, err := userns.NodeRange(opts.UserNamespacesIDsPerPod)
	if err != nil {
		return nil, fmt.Errorf("user namespaces: kubelet mappings: %w", err)
	}
	m, err := userns.NewManager(logger, opts.RootDir, r, opts.UserNamespacesIDsPerPod, opts.MaxPods)
	if err != nil {
		return nil, fmt.Errorf("user namespaces: %w", err)
	}
	return m, nil
}
