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
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/pleg"
	"github.com/berth-dev/berth/internal/podworker"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/source/file"
	"github.com/berth-dev/berth/internal/status"
)

// plegRelistThreshold is how stale the last successful relist may be before
// /healthz reports berth unhealthy (upstream uses 3 minutes).
const plegRelistThreshold = 3 * time.Minute

// Run starts every component and blocks until ctx is cancelled. Cancelling
// stops berth but leaves every pod running, so a restarted berth adopts them.
func Run(ctx context.Context, opts Options) error {
	logger := klog.FromContext(ctx)
	clk := clock.RealClock{}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	// Standalone: events go to the log. (With an API server they will also
	// be posted as Event objects.)
	broadcaster.StartStructuredLogging(2)
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.NodeName})

	rt, err := runtime.New(ctx, runtime.Options{
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

	store := status.NewStore(nil)
	var nodeIPs []string
	if opts.NodeIP != "" {
		nodeIPs = []string{opts.NodeIP}
	}
	workers := podworker.New(podworker.Options{
		Runtime:      rt,
		Status:       store,
		RuntimeName:  runtimeName,
		NodeIPs:      nodeIPs,
		ResyncPeriod: opts.SyncFrequency,
		Clock:        clk,
	})

	// sourcesReady turns true once every source has delivered its first
	// snapshot to the workers; only then may pods no source wants be removed.
	var sourcesReady atomic.Bool
	generator := pleg.New(pleg.Options{
		Lister:       rt,
		Events:       eventSource{rt},
		RelistPeriod: time.Second,
		OnChange:     workers.Wake,
		OnRecovered:  workers.WakeAll,
		OnRelist: func(pods map[types.UID]*container.PodStatus) {
			if !sourcesReady.Load() {
				return
			}
			for uid, st := range pods {
				if !workers.Known(uid) {
					logger.Info("Removing pod that no source wants", "pod", klog.KRef(st.Namespace, st.Name), "podUID", uid)
					workers.KillOrphan(st)
				}
			}
		},
	})

	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	run(func() { workers.Run(ctx) })
	run(func() { generator.Run(ctx) })
	run(func() { runSources(ctx, opts, workers, &sourcesReady) })

	health := func() error {
		if ok, err := generator.Healthy(clk.Now(), plegRelistThreshold); !ok {
			return fmt.Errorf("pleg: %w", err)
		}
		return nil
	}
	errc := make(chan error, 1)
	if opts.ReadOnlyPort > 0 {
		addr := net.JoinHostPort(opts.ReadOnlyAddress, strconv.Itoa(int(opts.ReadOnlyPort)))
		logger.Info("Serving the read-only API", "address", "http://"+addr, "paths", "/healthz /pods")
		run(func() {
			if err := server.Serve(ctx, addr, server.NewReadOnlyHandler(workers, health)); err != nil {
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

// runSources feeds the pod workers from the pod sources until ctx ends.
func runSources(ctx context.Context, opts Options, workers *podworker.Workers, ready *atomic.Bool) {
	logger := klog.FromContext(ctx)
	merger := source.NewMerger(logger)
	var sources []string
	snapshots := make(chan []*v1.Pod)
	if opts.StaticPodPath != "" {
		sources = append(sources, source.SourceFile)
		files := file.New(file.Options{Path: opts.StaticPodPath, NodeName: opts.NodeName, Period: opts.FileCheckFrequency})
		go files.Run(ctx, snapshots)
	} else {
		logger.Info("No staticPodPath given and no API server yet: berth has no pod source and will only clean up pods it finds in the runtime")
	}
	if len(sources) == 0 {
		ready.Store(true)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case pods := <-snapshots:
			for _, c := range merger.Set(source.SourceFile, pods) {
				switch c.Op {
				case source.Add, source.Update:
					workers.Update(c.Pod)
				case source.Remove:
					workers.Kill(c.Pod.UID, nil)
				}
			}
			if !ready.Load() && merger.SeenAllSources(sources...) {
				ready.Store(true)
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
