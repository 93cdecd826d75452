package pleg

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// exitWatcher notices the moment a container's main process exits, without
// waiting for the next relist: it holds a pidfd (pidfd_open(2), Linux 5.3+)
// for each running container and waits on all of them with one epoll. A
// pidfd refers to the process itself, so a reused PID can never be
// mistaken for it.
type exitWatcher struct {
	epfd   int
	onExit func(containerID string, uid types.UID)
	clock  clock.PassiveClock

	mu   sync.Mutex
	byFD map[int32]watched
	byID map[string]int32
}

type watched struct {
	containerID string
	uid         types.UID
	added       time.Time
}

func newExitWatcher(onExit func(containerID string, uid types.UID), clk clock.PassiveClock) (*exitWatcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &exitWatcher{epfd: epfd, onExit: onExit, clock: clk, byFD: map[int32]watched{}, byID: map[string]int32{}}, nil
}

func (w *exitWatcher) watching(containerID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.byID[containerID]
	return ok
}

// add watches the process pid of a container. A process that is already
// gone counts as an exit at once.
func (w *exitWatcher) add(containerID string, uid types.UID, pid int) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		w.onExit(containerID, uid)
		return nil
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.byID[containerID]; ok {
		unix.Close(fd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return err
	}
	w.byFD[int32(fd)] = watched{containerID: containerID, uid: uid, added: w.clock.Now()}
	w.byID[containerID] = int32(fd)
	return nil
}

// remove stops watching a container.
func (w *exitWatcher) remove(containerID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if fd, ok := w.byID[containerID]; ok {
		w.dropLocked(fd)
	}
}

// keepOnly stops watching every container not in running, a list of the
// runtime made at listedAt; containers watched since then are newer than
// the list and stay.
func (w *exitWatcher) keepOnly(running map[string]bool, listedAt time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, fd := range w.byID {
		if !running[id] && !newerThanList(w.byFD[fd].added, listedAt) {
			w.dropLocked(fd)
		}
	}
}

func (w *exitWatcher) dropLocked(fd int32) {
	if c, ok := w.byFD[fd]; ok {
		delete(w.byID, c.containerID)
		delete(w.byFD, fd)
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		unix.Close(int(fd))
	}
}

// run reports exits until ctx ends, then closes every descriptor.
func (w *exitWatcher) run(ctx context.Context) {
	events := make([]unix.EpollEvent, 64)
	for ctx.Err() == nil {
		// A bounded wait, so that cancellation is noticed.
		n, err := unix.EpollWait(w.epfd, events, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		var exited []watched
		w.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if c, ok := w.byFD[ev.Fd]; ok {
				exited = append(exited, c)
				w.dropLocked(ev.Fd)
			}
		}
		w.mu.Unlock()
		for _, c := range exited {
			w.onExit(c.containerID, c.uid)
		}
	}
	w.mu.Lock()
	for fd := range w.byFD {
		w.dropLocked(fd)
	}
	w.mu.Unlock()
	unix.Close(w.epfd)
}
