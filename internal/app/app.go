package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/objects"
	"github.com/berth-dev/berth/internal/pleg"
	"github.com/berth-dev/berth/internal/podworker"
	"github.com/berth-dev/berth/internal/prober"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/source/file"
	"github.com/berth-dev/berth/internal/status"
	"github.com/berth-dev/berth/internal/volume"
)

// plegRelistThreshold is how stale the last successful relist may be before
// /healthz reports berth unhealthy (upstream uses 3 minutes).
const plegRelistThreshold = 3 * time.Minute

// Run starts every component and blocks until ctx is cancelled. Cancelling
// stops berth but leaves every pod running, so a restarted berth adopts them.
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

	var api *apiComponents
	if opts.Kubeconfig != "" {
		var err error
		if api, err = newAPIClient(opts); err != nil {
			return err
		}
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(2)
	if api != nil {
		api.recordEventsToAPI(broadcaster)
	}
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.NodeName})

	if opts.NodeIP == "" && api != nil {
		opts.NodeIP = detectNodeIP(logger)
	}

	// wake reaches the pod workers and generator is the PLEG; both are
	// built after components that call them, and set before any of those
	// runs.
	var wake func(types.UID)
	var generator *pleg.PLEG
	var client kubernetes.Interface
	if api != nil {
		client = api.client
	}
	var vols *volume.Manager
	objs := objects.New(objects.Options{Client: client, OnChange: func(kind, ns, name string) {
		vols.ObjectChanged(kind, ns, name)
	}})
	vols = volume.New(volume.Options{
		Client:          client,
		Objects:         objs,
		RootDir:         opts.RootDir,
		NodeName:        opts.NodeName,
		NodeAllocatable: api.nodeAllocatable,
		Recorder:        recorder,
		Clock:           clk,
		OnChange:        func(uid types.UID) { wake(uid) },
	})
	var envObjects runtime.ObjectGetter
	if api != nil {
		envObjects = objs
	}

	obs := newObservability(opts.NodeName)
	rt, err := runtime.New(ctx, runtime.Options{
		WrapRuntimeService:    obs.wrapRuntime,
		WrapImageService:      obs.wrapImages,
		OnContainerStarted:    func(uid types.UID, id string) { generator.Watch(uid, id) },
		OnContainerStopping:   func(id string) { generator.Unwatch(id) },
		Volumes:               vols,
		Objects:               envObjects,
		Services:              api.serviceLister(),
		NodeAllocatable:       api.nodeAllocatable,
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
		MaxParallelImagePulls: opts.MaxParallelImagePulls,
		Recorder:              recorder,
		Clock:                 clk,
	})
	if err != nil {
		return fmt.Errorf("set up container runtime client: %w", err)
	}
	runtimeName := "containerd"
	if name, version, err := rt.Version(ctx); err != nil {
		logger.Error(err, "Container runtime is not reachable yet; berth keeps retrying", "endpoint", opts.RuntimeEndpoint)
	} else {
		runtimeName = name
		logger.Info("Connected to container runtime", "runtime", name, "version", version, "endpoint", opts.RuntimeEndpoint)
	}

	// The status store tells the API syncer (if any) and the pod start-up
	// tracker about every change.
	var onStatusChange func(types.UID)
	merger := source.NewMerger(logger)
	starts := obs.metrics.NewPodStartTracker(clk)
	var store *status.Store
	store = status.NewStore(func(uid types.UID) {
		if pod, ok := merger.Pod(uid); ok {
			if st, ok := store.Get(uid); ok {
				// The desired pod carries the API's last status: its phase
				// is the "before" of this change.
				starts.StatusComputed(pod, pod.Status.Phase, &st)
			}
		}
		if onStatusChange != nil {
			onStatusChange(uid)
		}
	})
	var nodeIPs []string
	if opts.NodeIP != "" {
		nodeIPs = []string{opts.NodeIP}
	}
	var onTerminated func(types.UID, *v1.Pod)
	probes := prober.New(prober.Options{
		Exec:     prober.ExecFromCRI(rt),
		Recorder: recorder,
		Clock:    clk,
		OnChange: func(uid types.UID) { wake(uid) },
		Metrics:  obs.probes,
	})
	workers := podworker.New(podworker.Options{
		Runtime:      rt,
		Status:       store,
		Volumes:      vols,
		Prober:       probes,
		RuntimeName:  runtimeName,
		NodeIPs:      nodeIPs,
		ResyncPeriod: opts.SyncFrequency,
		Clock:        clk,
		OnObserved:   func(uid types.UID, st *container.PodStatus) { generator.Observed(uid, st) },
		OnTerminated: func(uid types.UID, pod *v1.Pod) {
			starts.Forget(uid)
			if onTerminated != nil {
				onTerminated(uid, pod)
			}
		},
	})

	wake = workers.Wake

	cleanup := &orphanCleanup{volumes: vols, every: orphanCleanupPeriod}

	// sourcesReady turns true once every source has delivered its first
	// snapshot to the workers; only then may pods no source wants be removed.
	var sourcesReady atomic.Bool
	generator = pleg.New(pleg.Options{
		Lister:       obs.metrics.InstrumentRelist(rt, clk),
		Events:       eventSource{rt},
		PIDs:         rt,
		RelistPeriod: time.Second,
		OnChange:     workers.Wake,
		OnRecovered:  workers.WakeAll,
		OnRelist: func(pods map[types.UID]*container.PodStatus) {
			obs.runtimePods.Store(&pods)
			if !sourcesReady.Load() {
				return
			}
			for uid, st := range pods {
				if !workers.Known(uid) {
					logger.Info("Removing pod that no source wants", "pod", klog.KRef(st.Namespace, st.Name), "podUID", uid)
					workers.KillOrphan(st)
				}
			}
			cleanup.maybeRun(ctx, clk.Now(), func(uid types.UID) bool {
				_, inRuntime := pods[uid]
				return inRuntime || workers.Known(uid)
			})
		},
	})
	health := func() error {
		if err := generator.RuntimeError(); err != nil {
			return fmt.Errorf("container runtime is down: %w", err)
		}
		if ok, err := generator.Healthy(clk.Now(), plegRelistThreshold); !ok {
			return fmt.Errorf("PLEG is not healthy: %w", err)
		}
		return nil
	}

	admit, err := podAdmission(logger, opts, api)
	if err != nil {
		return err
	}
	d := &dispatcher{workers: workers, statuses: store, recorder: recorder, now: clk.Now, admit: admit}
	d.seen = func(pod *v1.Pod) {
		starts.Seen(pod)
		if api != nil {
			api.statusSyncer.Enqueue(pod.UID)
		}
	}
	var feeds []feed
	if opts.StaticPodPath != "" {
		files := file.New(file.Options{Path: opts.StaticPodPath, NodeName: opts.NodeName, Period: opts.FileCheckFrequency})
		feeds = append(feeds, feed{name: source.SourceFile, run: files.Run})
	}
	if api != nil {
		api.start(ctx, run, apiDeps{
			opts: opts, clock: clk, runtime: rt, health: health, merger: merger, statuses: store,
		})
		onStatusChange = api.statusSyncer.Enqueue
		onTerminated = func(_ types.UID, pod *v1.Pod) {
			if pod != nil {
				api.statusSyncer.PodTerminated(pod)
			}
		}
		d.deletedWithoutWorker = api.statusSyncer.PodTerminated
		feeds = append(feeds, feed{name: source.SourceAPI, run: api.pods.Run})
	}
	if len(feeds) == 0 {
		logger.Info("No staticPodPath and no kubeconfig: berth has no pod source and only cleans up pods it finds in the runtime")
	}

	run(func() { workers.Run(ctx) })
	run(func() { probes.Run(ctx) })
	run(func() { objs.Run(ctx) })
	run(func() { vols.Run(ctx) })
	run(func() { generator.Run(ctx) })
	run(func() {
		runSources(ctx, merger, feeds, d, &sourcesReady, func() {
			if api != nil {
				api.triggerMirrorSync()
			}
		})
	})

	errc := make(chan error, 2)
	if err := startObservers(ctx, run, errc, kubeletAPIDeps{
		opts: opts, obs: obs, runtime: rt, workers: workers, health: health, api: api,
	}); err != nil {
		return err
	}
	if opts.ReadOnlyPort > 0 {
		addr := net.JoinHostPort(opts.ReadOnlyAddress, strconv.Itoa(int(opts.ReadOnlyPort)))
		logger.Info("Serving the read-only API", "address", "http://"+addr, "paths", "/healthz /pods")
		run(func() {
			h := obs.metrics.InstrumentHandler("readonly", server.NewReadOnlyHandler(workers, health))
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

// orphanCleanupPeriod is how often volume directories of pods that neither
// a source nor the runtime knows are removed.
const orphanCleanupPeriod = 10 * time.Second

// orphanCleanup removes what pods left on disk once they are gone: after a
// restart, pods deleted while berth was down leave volume directories.
type orphanCleanup struct {
	volumes *volume.Manager
	every   time.Duration
	last    time.Time // only touched from the PLEG's goroutine
}

func (o *orphanCleanup) maybeRun(ctx context.Context, now time.Time, keep func(types.UID) bool) {
	if now.Sub(o.last) < o.every {
		return
	}
	o.last = now
	if err := o.volumes.CleanupOrphans(ctx, keep); err != nil {
		klog.FromContext(ctx).Error(err, "Cleaning up the volumes of removed pods failed; will retry")
	}
}

// feed is one pod source: Run sends full snapshots of its pods.
type feed struct {
	name string
	run  func(ctx context.Context, out chan<- []*v1.Pod)
}

type snapshot struct {
	source string
	pods   []*v1.Pod
}

// runSources merges the snapshots of every source and dispatches the
// changes to the pod workers until ctx ends.
func runSources(ctx context.Context, merger *source.Merger, feeds []feed, d *dispatcher, ready *atomic.Bool, staticChanged func()) {
	logger := klog.FromContext(ctx)
	names := make([]string, 0, len(feeds))
	updates := make(chan snapshot)
	for _, f := range feeds {
		names = append(names, f.name)
		out := make(chan []*v1.Pod)
		go f.run(ctx, out)
		go func(name string) {
			for {
				select {
				case <-ctx.Done():
					return
				case pods := <-out:
					select {
					case updates <- snapshot{source: name, pods: pods}:
					case <-ctx.Done():
						return
					}
				}
			}
		}(f.name)
	}
	if len(feeds) == 0 {
		ready.Store(true)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-updates:
			d.apply(logger, merger.Set(u.source, u.pods))
			if !ready.Load() && merger.SeenAllSources(names...) {
				ready.Store(true)
			}
			if u.source == source.SourceFile {
				staticChanged()
			}
		}
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
