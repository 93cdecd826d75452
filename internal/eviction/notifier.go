package eviction

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// thresholdNotifier asks the kernel to signal an eventfd when a memory
// cgroup's usage crosses a value (cgroup v1 cgroup.event_control on
// memory.usage_in_bytes, upstream's kernelMemcgNotification), so that a
// memory threshold is seen at once rather than at the next housekeeping
// round. The eventfd is non-blocking and read through Go's poller, so the
// goroutine that waits on it costs nothing while nothing crosses; closing
// it ends the goroutine and unregisters the threshold. cgroup v2 has no
// such interface (upstream disables its notifier there too): thresholds
// are then evaluated at every housekeeping round only.
type thresholdNotifier struct {
	value int64
	f     *os.File // the eventfd
	done  chan struct{}
}

// memcgValue is the memory.usage_in_bytes value at which the signal of a
// memory threshold reaches it: capacity − threshold + inactive file pages,
// since the signal counts the working set (usage − inactive file).
func memcgValue(t Threshold, m *statsapi.MemoryStats) (int64, bool) {
	if m == nil || m.UsageBytes == nil || m.WorkingSetBytes == nil || m.AvailableBytes == nil {
		return 0, false
	}
	inactive := int64(*m.UsageBytes) - int64(*m.WorkingSetBytes)
	capacity := int64(*m.AvailableBytes + *m.WorkingSetBytes)
	return capacity - t.Value.quantity(capacity).Value() + inactive, true
}

// startNotifier registers value on cgroupDir's memory usage and starts the
// goroutine that sends on crossed each time the usage crosses it.
func startNotifier(cgroupDir string, value int64, crossed chan<- struct{}) (*thresholdNotifier, error) {
	usage, err := unix.Open(filepath.Join(cgroupDir, "memory.usage_in_bytes"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open memory.usage_in_bytes: %w", err)
	}
	defer unix.Close(usage)
	control, err := unix.Open(filepath.Join(cgroupDir, "cgroup.event_control"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup.event_control: %w", err)
	}
	defer unix.Close(control)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if _, err := unix.Write(control, []byte(fmt.Sprintf("%d %d %d", efd, usage, value))); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("register memory threshold %d in %s: %w", value, cgroupDir, err)
	}
	n := &thresholdNotifier{value: value, f: os.NewFile(uintptr(efd), "memory threshold eventfd"), done: make(chan struct{})}
	go n.wait(crossed)
	return n, nil
}

func (n *thresholdNotifier) wait(crossed chan<- struct{}) {
	defer close(n.done)
	buf := make([]byte, 8)
	for {
		if _, err := n.f.Read(buf); err != nil {
			return // closed by stop
		}
		select {
		case crossed <- struct{}{}:
		default:
		}
	}
}

// stop closes the eventfd, which unregisters the threshold and ends the
// goroutine, and waits for it.
func (n *thresholdNotifier) stop() {
	_ = n.f.Close()
	<-n.done
}

// updateNotifiers keeps one notifier per memory threshold, registered at
// the usage that corresponds to the threshold in the latest sample.
func (m *Manager) updateNotifiers(ctx context.Context, s *statsapi.Summary, crossed chan<- struct{}) {
	if !m.cfg.KernelMemcgNotification || m.opts.MemoryCgroup == "" {
		return
	}
	logger := klog.FromContext(ctx)
	for i, t := range m.cfg.Thresholds {
		dir, mem := m.opts.MemoryCgroup, s.Node.Memory
		switch t.Signal {
		case SignalMemoryAvailable:
		case SignalAllocatableMemoryAvailable:
			dir, mem = filepath.Join(dir, m.opts.PodsCgroup), nil
			for _, sc := range s.Node.SystemContainers {
				if sc.Name == statsapi.SystemContainerPods {
					mem = sc.Memory
				}
			}
		default:
			continue
		}
		value, ok := memcgValue(t, mem)
		if !ok || value <= 0 {
			continue
		}
		old := m.notifiers[i]
		if old != nil && old.value == value {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.event_control")); err != nil {
			continue // cgroup v2, or no such cgroup: housekeeping rounds only
		}
		n, err := startNotifier(dir, value, crossed)
		if err != nil {
			logger.Info("Cannot set a memory threshold notification; thresholds are evaluated at each housekeeping round", "signal", t.Signal, "err", err)
			continue
		}
		if old != nil {
			old.stop()
		} else {
			logger.V(2).Info("Memory threshold notification set", "signal", t.Signal, "cgroup", dir, "usageBytes", strconv.FormatInt(value, 10))
		}
		m.notifiers[i] = n
	}
}

func (m *Manager) stopNotifiers() {
	for i, n := range m.notifiers {
		n.stop()
		delete(m.notifiers, i)
	}
}
