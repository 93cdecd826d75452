package dra

import (
	"context"
	"time"
)

// wipeDelay is how long a driver's ResourceSlices outlive its last plugin
// on the node (upstream's): long enough for a plugin's pod to be replaced,
// short enough that pods are not scheduled to a node without the driver
// for long.
const wipeDelay = 30 * time.Second

// wipeRetry is the delay before a failed wipe is tried again.
const wipeRetry = 5 * time.Second

// wipeRequest says that a driver ("" for all) lost or regained its plugins.
type wipeRequest struct {
	driver     string
	registered bool
}

// driverChanged is the plugins' notification; it must not block the
// plugin manager, so a full queue drops it (a later change of the same
// driver, or the next start, catches up).
func (m *Manager) driverChanged(driver string, registered bool) {
	select {
	case m.wipes <- wipeRequest{driver: driver, registered: registered}:
	default:
		m.opts.Logger.Info("DRA driver change not queued; its ResourceSlices are left as they are", "driverName", driver, "registered", registered)
	}
}

// Run owns the ResourceSlice clean-up: at start every ResourceSlice of the
// node (drivers publish theirs again when they register), then a driver's
// slices wipeDelay after its last plugin unregistered, unless one came
// back. It closes the plugins' connections when ctx ends.
func (m *Manager) Run(ctx context.Context) {
	defer m.plugins.closeAll()
	if m.opts.Slices == nil {
		<-ctx.Done()
		return
	}
	due := map[string]time.Time{"": time.Now()}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-m.wipes:
			if r.registered {
				delete(due, r.driver)
			} else if _, ok := due[r.driver]; !ok {
				due[r.driver] = time.Now().Add(wipeDelay)
			}
		case <-timer.C:
			now := time.Now()
			for driver, at := range due {
				if at.After(now) {
					continue
				}
				if err := m.opts.Slices.WipeResourceSlices(ctx, driver); err != nil {
					m.opts.Logger.V(2).Info("Deleting ResourceSlices failed; will retry", "driverName", driver, "err", err)
					due[driver] = now.Add(wipeRetry)
					continue
				}
				m.opts.Logger.V(2).Info("Deleted ResourceSlices", "driverName", driver)
				delete(due, driver)
			}
		}
		next := time.Hour
		for _, at := range due {
			next = min(next, max(time.Until(at), 0))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}
