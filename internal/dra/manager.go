package dra

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	v1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
)

// FailedPrepareDynamicResources is upstream's event reason when a pod's
// claims cannot be prepared; the pod waits and is retried.
const FailedPrepareDynamicResources = "FailedPrepareDynamicResources"

// ClaimGetter reads a ResourceClaim from the API server.
type ClaimGetter interface {
	GetResourceClaim(ctx context.Context, namespace, name string) (*resourceapi.ResourceClaim, error)
}

// SliceWiper deletes the node's ResourceSlices of a driver ("" for every
// driver): those of a driver gone from the node would otherwise keep
// attracting pods.
type SliceWiper interface {
	WipeResourceSlices(ctx context.Context, driver string) error
}

// Options configures a Manager.
type Options struct {
	// StateDir holds the checkpoint (upstream: the root dir).
	StateDir string
	Claims   ClaimGetter
	// Slices may be nil: ResourceSlices are then left alone.
	Slices SliceWiper
	// Recorder receives FailedPrepareDynamicResources events; may be nil.
	Recorder record.EventRecorder
	Logger   klog.Logger
}

// Manager prepares the ResourceClaims of pods with the DRA drivers' kubelet
// plugins before their sandbox starts, gives their containers the CDI
// devices the drivers returned, and unprepares a claim when the last pod
// on the node using it is gone. Every claim it has started to prepare is
// in the checkpoint with the pods using it, so that a restarted berth
// unprepares what it prepared before.
type Manager struct {
	opts    Options
	plugins *Plugins
	wipes   chan wipeRequest

	mu     sync.Mutex
	claims map[string]*claimEntry // namespace/name
}

// claimEntry is a claim known to the node: prepared, being prepared, or
// being unprepared.
type claimEntry struct {
	claimState
	// prepared: every driver returned its devices (not recorded: after a
	// restart NodePrepareResources is called again, which drivers must
	// accept, and returns the same devices).
	prepared bool
	// unpreparing: NodeUnprepareResources has been called; no new pod may
	// use the claim until it is gone.
	unpreparing bool
}

// New reads the checkpoint; an unreadable one is an error.
func New(opts Options) (*Manager, error) {
	states, err := readCheckpoint(opts.StateDir)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, claims: map[string]*claimEntry{}, wipes: make(chan wipeRequest, 16)}
	for _, s := range states {
		m.claims[key(s.Namespace, s.ClaimName)] = &claimEntry{claimState: s}
	}
	m.plugins = newPlugins(opts.Logger, m.driverChanged)
	return m, nil
}

func key(namespace, name string) string { return namespace + "/" + name }

// Plugins is the registration handler for DRA kubelet plugins.
func (m *Manager) Plugins() *Plugins { return m.plugins }

// Prepare makes the pod's claims ready for its containers. An error (the
// claim not yet allocated or reserved for the pod, its driver not
// registered, the driver failing) is recorded as a
// FailedPrepareDynamicResources event on the pod; the caller retries.
func (m *Manager) Prepare(ctx context.Context, pod *v1.Pod) error {
	err := m.prepare(ctx, pod)
	if err != nil {
		err = fmt.Errorf("prepare dynamic resources: %w", err)
		if m.opts.Recorder != nil {
			m.opts.Recorder.Eventf(pod, v1.EventTypeWarning, FailedPrepareDynamicResources, "Failed to prepare dynamic resources: %v", err)
		}
	}
	return err
}

// toPrepare is one claim of a pod, read from the API server and checked.
type toPrepare struct {
	claim *resourceapi.ResourceClaim
	state *claimState
}

func (m *Manager) prepare(ctx context.Context, pod *v1.Pod) error {
	refs, err := podClaims(pod)
	if err != nil || len(refs) == 0 {
		return err
	}
	// Check everything before the cache changes: a pod that fails here
	// has nothing to unprepare and can be deleted without its driver.
	var claims []toPrepare
	for _, ref := range refs {
		claim, err := m.opts.Claims.GetResourceClaim(ctx, pod.Namespace, ref.name)
		if err != nil {
			return fmt.Errorf("fetch ResourceClaim %s: %w", ref.name, err)
		}
		if err := checkClaim(pod, ref, claim); err != nil {
			return err
		}
		st, err := newClaimState(claim)
		if err != nil {
			return err
		}
		for driver := range st.DriverState {
			if _, err := m.plugins.get(driver); err != nil {
				return err
			}
		}
		claims = append(claims, toPrepare{claim: claim, state: st})
	}

	batches, err := m.reference(pod.UID, claims)
	if err != nil {
		return err
	}
	for driver, batch := range batches {
		devices, err := m.callPrepare(ctx, driver, batch)
		if err != nil {
			return err
		}
		m.mu.Lock()
		for claimUID, devs := range devices {
			for _, c := range claims {
				if string(c.claim.UID) == claimUID {
					e := m.claims[key(c.claim.Namespace, c.claim.Name)]
					ds := e.DriverState[driver]
					ds.Devices = devs // the driver's answer replaces an earlier partial one
					e.DriverState[driver] = ds
				}
			}
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range claims {
		if e := m.claims[key(c.claim.Namespace, c.claim.Name)]; e != nil {
			e.prepared = true
		}
	}
	return m.checkpointLocked()
}

// reference records the pod as a user of each claim (adding claims not yet
// known) and checkpoints that before any driver is called, so that a pod
// deleted meanwhile is unprepared even across a restart. It returns the
// claims still to be prepared, per driver.
func (m *Manager) reference(podUID types.UID, claims []toPrepare) (map[string][]*drapb.Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	batches := map[string][]*drapb.Claim{}
	for _, c := range claims {
		k := key(c.claim.Namespace, c.claim.Name)
		e, ok := m.claims[k]
		switch {
		case !ok:
			e = &claimEntry{claimState: *c.state}
			m.claims[k] = e
		case e.ClaimUID != c.claim.UID:
			return nil, fmt.Errorf("old ResourceClaim with same name %s and different UID %s still exists (previous pod force-deleted?!)", c.claim.Name, e.ClaimUID)
		case e.unpreparing:
			return nil, fmt.Errorf("ResourceClaim %s is being unprepared", c.claim.Name)
		}
		e.PodUIDs.Insert(string(podUID))
		if e.prepared {
			continue
		}
		for driver := range e.DriverState {
			batches[driver] = append(batches[driver], &drapb.Claim{Namespace: e.Namespace, Uid: string(e.ClaimUID), Name: e.ClaimName})
		}
	}
	if err := m.checkpointLocked(); err != nil {
		return nil, err
	}
	return batches, nil
}

// callPrepare calls the driver's NodePrepareResources for a batch and
// returns the devices per claim UID.
func (m *Manager) callPrepare(ctx context.Context, driver string, batch []*drapb.Claim) (map[string][]device, error) {
	pl, err := m.plugins.get(driver)
	if err != nil {
		return nil, err
	}
	resp, err := pl.prepare(ctx, &drapb.NodePrepareResourcesRequest{Claims: batch})
	if err != nil {
		return nil, fmt.Errorf("NodePrepareResources: %w", err)
	}
	out := map[string][]device{}
	for uid, res := range resp.GetClaims() {
		c := findClaim(batch, uid)
		if c == nil {
			return nil, fmt.Errorf("NodePrepareResources returned result for unknown claim UID %s", uid)
		}
		if res.GetError() != "" {
			return nil, fmt.Errorf("NodePrepareResources failed for ResourceClaim %s: %s", c.Name, res.GetError())
		}
		devs := []device{}
		for _, d := range res.GetDevices() {
			devs = append(devs, device{
				PoolName: d.GetPoolName(), DeviceName: d.GetDeviceName(), ShareID: (*types.UID)(d.ShareId),
				RequestNames: d.GetRequestNames(), CDIDeviceIDs: d.GetCdiDeviceIds(),
			})
		}
		out[uid] = devs
	}
	if n := len(batch) - len(resp.GetClaims()); n != 0 {
		return nil, fmt.Errorf("NodePrepareResources skipped %d ResourceClaims", n)
	}
	return out, nil
}

func findClaim(batch []*drapb.Claim, uid string) *drapb.Claim {
	for _, c := range batch {
		if c.Uid == uid {
			return c
		}
	}
	return nil
}

// CDIDevices are the CDI device IDs of a container's claims, for its CRI
// config. The pod's claims must have been prepared.
func (m *Manager) CDIDevices(pod *v1.Pod, c *v1.Container) ([]string, error) {
	requests, err := containerClaimRequests(pod, c)
	if err != nil || len(requests) == 0 {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, name := range slices.Sorted(maps.Keys(requests)) {
		e, ok := m.claims[key(pod.Namespace, name)]
		if !ok {
			return nil, fmt.Errorf("internal error: unable to get claim info for ResourceClaim %s in namespace %s", name, pod.Namespace)
		}
		for _, r := range requests[name] {
			ids = append(ids, e.cdiDevices(r)...)
		}
	}
	return ids, nil
}

// Unprepare drops the pod from the claims it uses, and unprepares each
// claim no other pod uses. Called once the pod's containers are gone;
// idempotent. The pod may be nil (an orphan found only in the runtime).
func (m *Manager) Unprepare(ctx context.Context, uid types.UID) error {
	batches, gone, changed := m.release(uid)
	if !changed {
		return nil // the pod used no claim: nothing to write
	}
	for driver, batch := range batches {
		if err := m.callUnprepare(ctx, driver, batch); err != nil {
			return fmt.Errorf("unprepare dynamic resources: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range gone {
		delete(m.claims, k)
	}
	if err := m.checkpointLocked(); err != nil {
		return fmt.Errorf("unprepare dynamic resources: %w", err)
	}
	return nil
}

// release drops uid from the claims other pods still use, and marks the
// claims only it uses as being unprepared: those are returned per driver,
// and by key. changed is false when the pod used no claim.
func (m *Manager) release(uid types.UID) (batches map[string][]*drapb.Claim, gone []string, changed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	batches = map[string][]*drapb.Claim{}
	for k, e := range m.claims {
		if !e.PodUIDs.Has(string(uid)) {
			continue
		}
		changed = true
		if e.PodUIDs.Len() > 1 {
			e.PodUIDs.Delete(string(uid))
			continue
		}
		e.unpreparing = true
		gone = append(gone, k)
		for driver := range e.DriverState {
			batches[driver] = append(batches[driver], &drapb.Claim{Namespace: e.Namespace, Uid: string(e.ClaimUID), Name: e.ClaimName})
		}
	}
	return batches, gone, changed
}

func (m *Manager) callUnprepare(ctx context.Context, driver string, batch []*drapb.Claim) error {
	pl, err := m.plugins.get(driver)
	if err != nil {
		return err
	}
	resp, err := pl.unprepare(ctx, &drapb.NodeUnprepareResourcesRequest{Claims: batch})
	if err != nil {
		return fmt.Errorf("NodeUnprepareResources: %w", err)
	}
	for uid, res := range resp.GetClaims() {
		c := findClaim(batch, uid)
		if c == nil {
			return fmt.Errorf("NodeUnprepareResources returned result for unknown claim UID %s", uid)
		}
		if res.GetError() != "" {
			return fmt.Errorf("NodeUnprepareResources failed for ResourceClaim %s: %s", c.Name, res.GetError())
		}
	}
	if n := len(batch) - len(resp.GetClaims()); n != 0 {
		return fmt.Errorf("NodeUnprepareResources skipped %d ResourceClaims", n)
	}
	return nil
}

// CleanupOrphans unprepares the claims of pods for which keep is false:
// pods removed while berth was down, or whose preparation began but whose
// worker is gone (upstream's reconcile loop).
func (m *Manager) CleanupOrphans(ctx context.Context, keep func(types.UID) bool) error {
	m.mu.Lock()
	var orphans []types.UID
	for _, e := range m.claims {
		for uid := range e.PodUIDs {
			if !keep(types.UID(uid)) && !slices.Contains(orphans, types.UID(uid)) {
				orphans = append(orphans, types.UID(uid))
			}
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, uid := range orphans {
		if err := m.Unprepare(ctx, uid); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", uid, err))
		}
	}
	return errors.Join(errs...)
}

// checkpointLocked writes every known claim; m.mu is held.
func (m *Manager) checkpointLocked() error {
	states := make([]claimState, 0, len(m.claims))
	for _, k := range slices.Sorted(maps.Keys(m.claims)) {
		states = append(states, m.claims[k].claimState)
	}
	if err := writeCheckpoint(m.opts.StateDir, states); err != nil {
		return fmt.Errorf("checkpoint ResourceClaim state: %w", err)
	}
	return nil
}
