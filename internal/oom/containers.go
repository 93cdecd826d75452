package oom

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// ContainerMonitor notices OOM kills in containers' memory cgroups as the
// kernel reports them, for the runtimes whose status says "Error" a
// moment before it says "OOMKilled" (containerd handles the task's exit
// and its OOM event apart). On cgroup v1 an eventfd is registered on each
// container's memory.oom_control (cgroup.event_control); on v2
// memory.events is watched with inotify and its oom_kill counter read.
// One goroutine waits on all of them with one epoll; nothing runs per
// container.
type ContainerMonitor struct {
	mount string // the memory hierarchy (v1) or the unified one (v2)
	v2    bool

	epfd, wake int
	inotify    int // v2 only

	mu     sync.Mutex
	byFD   map[int32]*watch // v1: by eventfd
	byWD   map[int32]*watch // v2: by inotify watch
	kills  map[string]time.Time
	closed bool
}

// watch is one container's registration.
type watch struct {
	id      string
	eventFD int // v1
	control int // v1: memory.oom_control, kept open to read it
	wd      int // v2
	events  string
}

// killsKept bounds how long an OOM kill is remembered: the runtime's
// status is read within moments of the exit.
const killsKept = 10 * time.Minute

// NewContainerMonitor prepares a monitor for the cgroups mounted at mount
// (/sys/fs/cgroup); Run starts it.
func NewContainerMonitor(mount string) (*ContainerMonitor, error) {
	m := &ContainerMonitor{mount: mount, byFD: map[int32]*watch{}, byWD: map[int32]*watch{}, kills: map[string]time.Time{}, inotify: -1}
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		m.v2 = true
	} else {
		m.mount = filepath.Join(mount, "memory")
	}
	var err error
	if m.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if m.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		unix.Close(m.epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := m.add(m.wake); err != nil {
		m.closeAll()
		return nil, err
	}
	if m.v2 {
		if m.inotify, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err != nil {
			m.closeAll()
			return nil, fmt.Errorf("inotify: %w", err)
		}
		if err := m.add(m.inotify); err != nil {
			m.closeAll()
			return nil, err
		}
	}
	return m, nil
}

func (m *ContainerMonitor) add(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll add: %w", err)
	}
	return nil
}

// Watch starts watching the container's memory cgroup, the child of its
// pod's cgroup (podCgroup, a cgroup name such as
// "/kubepods/burstable/pod<uid>") whose name carries the container's ID
// (<id> with cgroupfs, cri-containerd-<id>.scope with systemd).
func (m *ContainerMonitor) Watch(podCgroup, containerID string) error {
	dir, err := containerDir(filepath.Join(m.mount, podCgroup), containerID)
	if err != nil {
		return err
	}
	w := &watch{id: containerID, eventFD: -1, control: -1, wd: -1}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("OOM monitor stopped")
	}
	if m.v2 {
		w.events = filepath.Join(dir, "memory.events")
		wd, err := unix.InotifyAddWatch(m.inotify, w.events, unix.IN_MODIFY)
		if err != nil {
			return fmt.Errorf("watch %s: %w", w.events, err)
		}
		w.wd = wd
		m.byWD[int32(wd)] = w
		return nil
	}
	if w.control, err = unix.Open(filepath.Join(dir, "memory.oom_control"), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open memory.oom_control: %w", err)
	}
	ctl, err := unix.Open(filepath.Join(dir, "cgroup.event_control"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(w.control)
		return fmt.Errorf("open cgroup.event_control: %w", err)
	}
	defer unix.Close(ctl)
	if w.eventFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		unix.Close(w.control)
		return fmt.Errorf("eventfd: %w", err)
	}
	if _, err := unix.Write(ctl, []byte(fmt.Sprintf("%d %d", w.eventFD, w.control))); err != nil {
		w.close()
		return fmt.Errorf("register OOM notification in %s: %w", dir, err)
	}
	if err := m.add(w.eventFD); err != nil {
		w.close()
		return err
	}
	m.byFD[int32(w.eventFD)] = w
	return nil
}

// containerDir finds the child cgroup of pod that belongs to the container.
func containerDir(pod, id string) (string, error) {
	if _, err := os.Stat(filepath.Join(pod, id)); err == nil {
		return filepath.Join(pod, id), nil
	}
	entries, err := os.ReadDir(pod)
	if err != nil {
		return "", fmt.Errorf("container cgroup of %s: %w", id, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.Contains(e.Name(), id) {
			return filepath.Join(pod, e.Name()), nil
		}
	}
	return "", fmt.Errorf("no cgroup for container %s under %s", id, pod)
}

func (w *watch) close() {
	for _, fd := range []int{w.eventFD, w.control} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// OOMKilled reports whether the kernel's OOM killer acted in the
// container's cgroup.
func (m *ContainerMonitor) OOMKilled(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.kills[containerID]
	return ok
}

// Run waits for OOM notifications until ctx ends, then releases every
// registration.
func (m *ContainerMonitor) Run(ctx context.Context) {
	logger := klog.FromContext(ctx)
	stop := context.AfterFunc(ctx, func() {
		var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}
		_, _ = unix.Write(m.wake, one)
	})
	defer stop()
	defer m.closeAll()
	events := make([]unix.EpollEvent, 32)
	buf := make([]byte, 4096)
	for {
		n, err := unix.EpollWait(m.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			logger.Error(err, "OOM monitor stopped; container OOM kills are reported as the runtime reports them")
			return
		}
		for _, ev := range events[:n] {
			switch int(ev.Fd) {
			case m.wake:
				if ctx.Err() != nil {
					return
				}
			case m.inotify:
				m.readInotify(buf)
			default:
				m.eventV1(ev.Fd)
			}
		}
	}
}

// eventV1 handles a signalled eventfd: an OOM while memory.oom_control
// still reads, the cgroup's removal once it does not.
func (m *ContainerMonitor) eventV1(fd int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.byFD[fd]
	if w == nil {
		return
	}
	var cnt [8]byte
	_, _ = unix.Read(w.eventFD, cnt[:])
	var buf [256]byte
	if _, err := unix.Pread(w.control, buf[:], 0); err != nil {
		_ = unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, w.eventFD, nil)
		w.close()
		delete(m.byFD, fd)
		return
	}
	m.recordLocked(w.id)
}

// readInotify handles v2 memory.events changes.
func (m *ContainerMonitor) readInotify(buf []byte) {
	n, err := unix.Read(m.inotify, buf)
	if err != nil || n < unix.SizeofInotifyEvent {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		off += unix.SizeofInotifyEvent + int(ev.Len)
		w := m.byWD[ev.Wd]
		if w == nil {
			continue
		}
		if ev.Mask&unix.IN_IGNORED != 0 {
			delete(m.byWD, ev.Wd) // the cgroup is gone
			continue
		}
		if b, err := os.ReadFile(w.events); err == nil && oomKills(string(b)) > 0 {
			m.recordLocked(w.id)
		}
	}
}

// oomKills reads the oom_kill counter of memory.events.
func oomKills(events string) int64 {
	for _, line := range strings.Split(events, "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

func (m *ContainerMonitor) recordLocked(id string) {
	now := time.Now()
	if _, seen := m.kills[id]; !seen {
		for k, t := range m.kills {
			if now.Sub(t) > killsKept {
				delete(m.kills, k)
			}
		}
	}
	m.kills[id] = now
}

// closeAll releases every file descriptor.
func (m *ContainerMonitor) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	for _, w := range m.byFD {
		w.close()
	}
	for _, fd := range []int{m.inotify, m.wake, m.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
