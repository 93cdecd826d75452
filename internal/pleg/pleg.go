// Package pleg is berth's pod lifecycle event generator: it notices when the
// runtime state of a pod changes (a container started, exited, was removed)
// and wakes that pod's worker. It relists the runtime every period and, where
// the runtime streams container events (CRI GetContainerEvents), reacts to
// those at once; the relist stays as the safety net either way.
package pleg

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
)

// Lister lists every pod the runtime holds, from cheap list calls.
type Lister interface {
	ListPods(ctx context.Context) (map[types.UID]*container.PodStatus, error)
}

// EventSource streams container events; it returns when the stream ends.
// An error that wraps ErrEventsUnsupported means the runtime has no stream.
type EventSource interface {
	WatchContainerEvents(ctx context.Context, onEvent func(podUID types.UID)) error
}

// Processes finds the main process of a running container, so that its
// exit can be noticed at once, and asks the runtime whether it has recorded
// a container's exit.
type Processes interface {
	ContainerPID(ctx context.Context, containerID string) (int, error)
	// ContainerExited reports whether the runtime shows the container
	// exited (or gone).
	ContainerExited(ctx context.Context, containerID string) (bool, error)
}

// ErrEventsUnsupported is wrapped by EventSource errors when the runtime does
// not implement container events; the PLEG then relies on relisting alone.
var ErrEventsUnsupported = errors.New("runtime does not stream container events")

// Consumer is told what the PLEG notices (the pod workers' queue,
// podworker.Wakeups). Its methods are called from the PLEG's goroutines
// (the relist, the exit confirmer, the event stream), must be safe for
// concurrent use and must not block.
type Consumer interface {
	// Wake: the pod's runtime state changed (it may have vanished).
	Wake(uid types.UID)
	// WakeAll: the runtime answers again after failed relists; every pod,
	// including those with nothing in the runtime yet, should sync now
	// rather than on its retry timer.
	WakeAll()
	// Relisted: a fresh snapshot of every pod in the runtime (to find the
	// pods no source wants).
	Relisted(pods map[types.UID]*container.PodStatus)
}

// Options configures a PLEG.
type Options struct {
	Lister Lister
	// Events may be nil.
	Events EventSource
	// PIDs, if set, lets the PLEG watch each running container's process
	// (pidfd) and wake its pod's worker as soon as the runtime has recorded
	// the exit, instead of at the next relist period.
	PIDs Processes
	// RelistPeriod is how often the runtime is listed (upstream: 1 s).
	RelistPeriod time.Duration
	// Consumer is told of changes; required.
	Consumer Consumer
	// Watches takes the containers the runtime has just started and is
	// stopping; may be nil.
	Watches *Watches
	// Clock stamps relists and worker observations and paces the relist
	// and exit confirmation (see timing.go). Default: the real clock.
	Clock clock.WithTicker
}

// PLEG notices runtime state changes. Create with New, start with Run.
type PLEG struct {
	opts Options

	clock clock.WithTicker
	// watches holds the started containers to watch and, once Run has set
	// it up, the exit watcher.
	watches *Watches
	// latest is the last successful relist (RuntimePods).
	latest atomic.Pointer[map[types.UID]*container.PodStatus]
	// unwatchable holds running containers whose process could not be
	// found, so that the runtime is not asked again every relist. Only the
	// relist goroutine touches it.
	unwatchable map[string]bool

	mu          sync.Mutex
	lastRelist  time.Time
	lastErr     error
	fingerprint map[types.UID]string
	// observedAt is when a worker last told (Observed) what it read of a
	// pod; a relist listed before that is older than the worker's view.
	observedAt map[types.UID]time.Time
}

// maxNewWatchesPerRelist bounds the CRI calls one relist makes to find the
// processes of new containers; the rest wait for the next relist.
const maxNewWatchesPerRelist = 20

// New returns a PLEG; it does nothing until Run.
func New(opts Options) *PLEG {
	if opts.RelistPeriod <= 0 {
		opts.RelistPeriod = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Watches == nil {
		opts.Watches = NewWatches()
	}
	return &PLEG{
		opts:        opts,
		clock:       opts.Clock,
		watches:     opts.Watches,
		unwatchable: map[string]bool{},
		fingerprint: map[types.UID]string{},
		observedAt:  map[types.UID]time.Time{},
	}
}

// Observed records the runtime state a pod's worker has just read, so
// that a relist showing that same state does not wake the worker again:
// without it every container a worker starts would cost it a second sync
// when the next relist sees the container. It is safe to call from any
// goroutine.
func (p *PLEG) Observed(uid types.UID, st *container.PodStatus) {
	fp := Fingerprint(st)
	p.mu.Lock()
	defer p.mu.Unlock()
	if fp == "" {
		delete(p.fingerprint, uid) // as a relist shows a pod with nothing
	} else {
		p.fingerprint[uid] = fp
	}
	p.observedAt[uid] = p.clock.Now()
}

// watchStarted looks up and watches the processes of started containers
// until ctx ends.
func (p *PLEG) watchStarted(ctx context.Context, exits *exitWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-p.watches.started:
			if exits.watching(req.containerID) {
				continue
			}
			pid, err := p.opts.PIDs.ContainerPID(ctx, req.containerID)
			if err != nil || pid <= 0 {
				// Exited already, or no process info: the relist notices.
				continue
			}
			if err := exits.add(req.containerID, req.uid, pid); err != nil {
				klog.FromContext(ctx).V(4).Info("Cannot watch container process", "containerID", req.containerID, "err", err)
			}
		}
	}
}

// Run relists until ctx is cancelled, and watches runtime events alongside.
func (p *PLEG) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("pleg")
	ctx = klog.NewContext(ctx, logger)
	var wg sync.WaitGroup
	if p.opts.Events != nil {
		wg.Go(func() { p.watchEvents(ctx) })
	}
	if p.opts.PIDs != nil {
		confirm := newExitConfirmer(p.opts.PIDs.ContainerExited, p.opts.Consumer.Wake, p.clock)
		w, err := newExitWatcher(confirm.add, p.clock)
		if err != nil {
			logger.Info("Cannot watch container processes; exits are noticed by relisting only", "err", err)
		} else {
			p.watches.exits.Store(w)
			wg.Go(func() { w.run(ctx) })
			wg.Go(func() { confirm.run(ctx) })
			wg.Go(func() { p.watchStarted(ctx, w) })
		}
	}
	ticker := p.clock.NewTicker(p.opts.RelistPeriod)
	defer ticker.Stop()
	for {
		p.relist(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-ticker.C():
		}
	}
}

// Healthy reports whether a relist succeeded recently, and the last error.
func (p *PLEG) Healthy(now time.Time, threshold time.Duration) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastRelist.IsZero() || now.Sub(p.lastRelist) > threshold {
		if p.lastErr != nil {
			return false, p.lastErr
		}
		return false, errors.New("pleg has not relisted the runtime recently")
	}
	return true, nil
}

// RuntimePods returns the runtime's pods as the last successful relist
// saw them (nil before the first); the caller must not modify them.
func (p *PLEG) RuntimePods() map[types.UID]*container.PodStatus {
	if m := p.latest.Load(); m != nil {
		return *m
	}
	return nil
}

// RuntimeError returns why the last relist failed, or nil when it succeeded:
// the runtime is unreachable right now.
func (p *PLEG) RuntimeError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

func (p *PLEG) relist(ctx context.Context) {
	logger := klog.FromContext(ctx)
	listedAt := p.clock.Now()
	pods, err := p.opts.Lister.ListPods(ctx)
	if err != nil {
		p.mu.Lock()
		first := p.lastErr == nil
		p.lastErr = err
		p.mu.Unlock()
		if first {
			// Logged once per outage: the relist runs every second.
			logger.Error(err, "Cannot list pods from the container runtime; retrying every relist period. Check that the runtime is running")
		}
		return
	}
	next := make(map[types.UID]string, len(pods))
	for uid, st := range pods {
		next[uid] = Fingerprint(st)
	}
	p.mu.Lock()
	prev := p.fingerprint
	keepObserved(prev, next, p.observedAt, listedAt)
	recovered := p.lastErr != nil
	p.fingerprint = next
	p.lastRelist = p.clock.Now()
	p.lastErr = nil
	p.mu.Unlock()

	p.latest.Store(&pods)
	if recovered {
		logger.Info("Container runtime is reachable again; resyncing every pod")
		p.opts.Consumer.WakeAll()
	} else {
		for _, uid := range Changed(prev, next) {
			p.opts.Consumer.Wake(uid)
		}
	}
	p.opts.Consumer.Relisted(pods)
	p.watchExits(ctx, pods, listedAt)
}

// watchExits starts watching the processes of containers that are newly
// running and stops watching those that are not running any more.
func (p *PLEG) watchExits(ctx context.Context, pods map[types.UID]*container.PodStatus, listedAt time.Time) {
	exits := p.watches.exits.Load()
	if exits == nil {
		return
	}
	running := map[string]bool{}
	added := 0
	for uid, st := range pods {
		for _, c := range st.Containers {
			if c.State != container.StateRunning {
				continue
			}
			running[c.ID] = true
			if added >= maxNewWatchesPerRelist || p.unwatchable[c.ID] || exits.watching(c.ID) {
				continue
			}
			added++
			pid, err := p.opts.PIDs.ContainerPID(ctx, c.ID)
			if err != nil || pid <= 0 {
				p.unwatchable[c.ID] = true // its exit is noticed by relisting
				continue
			}
			if err := exits.add(c.ID, uid, pid); err != nil {
				klog.FromContext(ctx).V(4).Info("Cannot watch container process", "containerID", c.ID, "err", err)
			}
		}
	}
	exits.keepOnly(running, listedAt)
	for id := range p.unwatchable {
		if !running[id] {
			delete(p.unwatchable, id)
		}
	}
}

func (p *PLEG) watchEvents(ctx context.Context) {
	logger := klog.FromContext(ctx)
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: 1 << 30}
	for ctx.Err() == nil {
		err := p.opts.Events.WatchContainerEvents(ctx, p.opts.Consumer.Wake)
		if errors.Is(err, ErrEventsUnsupported) {
			logger.V(1).Info("Runtime does not stream container events; relying on relist", "period", p.opts.RelistPeriod)
			return
		}
		if ctx.Err() != nil {
			return
		}
		logger.V(2).Info("Container event stream ended; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-p.clock.After(backoff.Step()):
		}
	}
}

// Fingerprint summarises the parts of a pod's runtime state whose change
// should wake its worker: the identity and state of every sandbox and
// container.
func Fingerprint(st *container.PodStatus) string {
	parts := make([]string, 0, len(st.Sandboxes)+len(st.Containers))
	for _, sb := range st.Sandboxes {
		parts = append(parts, "s/"+sb.ID+"/"+string(sb.State))
	}
	for _, c := range st.Containers {
		parts = append(parts, "c/"+c.ID+"/"+string(c.State))
	}
	sort.Strings(parts)
	n := 0
	for _, s := range parts {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for _, s := range parts {
		b = append(b, s...)
		b = append(b, ';')
	}
	return string(b)
}

// keepObserved puts into next, a relist made at listedAt, the state workers
// observed after that (they read the runtime later than the relist did),
// and forgets observations the relist has caught up with.
func keepObserved(prev, next map[types.UID]string, observedAt map[types.UID]time.Time, listedAt time.Time) {
	for uid, at := range observedAt {
		if !newerThanList(at, listedAt) {
			delete(observedAt, uid)
			continue
		}
		if fp, ok := prev[uid]; ok {
			next[uid] = fp
		} else {
			delete(next, uid)
		}
	}
}

// Changed returns, sorted, the pods whose fingerprint differs between two
// relists, including pods present in only one of them.
func Changed(prev, next map[types.UID]string) []types.UID {
	var out []types.UID
	for uid, fp := range next {
		if old, ok := prev[uid]; !ok || old != fp {
			out = append(out, uid)
		}
	}
	for uid := range prev {
		if _, ok := next[uid]; !ok {
			out = append(out, uid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
