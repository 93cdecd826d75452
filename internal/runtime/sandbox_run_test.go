package runtime

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/internal/plan"
)

func TestParallelSandboxStarts(t *testing.T) {
	for _, tt := range []struct{ cpus, want int }{{1, 2}, {2, 4}, {16, 32}} {
		if got := parallelSandboxStarts(tt.cpus); got != tt.want {
			t.Errorf("parallelSandboxStarts(%d) = %d, want %d", tt.cpus, got, tt.want)
		}
	}
}

// A burst of pods creates at most the allowed number of sandboxes at once,
// and every pod gets its sandbox.
func TestSandboxStartsAreBounded(t *testing.T) {
	e := newEnv(t)
	const slots, pods = 2, 6
	e.m.sandboxSlots = make(chan struct{}, slots)
	var mu sync.Mutex
	inFlight, most, entered := 0, 0, 0
	release := make(chan struct{})
	allIn := make(chan struct{})
	e.rs.beforeRunSandbox = func() {
		mu.Lock()
		inFlight++
		entered++
		most = max(most, inFlight)
		if entered == slots {
			close(allIn)
		}
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range pods {
		pod := fakePod()
		pod.Name, pod.UID = fmt.Sprintf("web-%d", i), types.UID(fmt.Sprintf("uid-%d", i))
		wg.Go(func() {
			st := e.status(pod)
			e.m.SyncPod(context.Background(), pod, st, plan.ComputePodActions(pod, st, nil))
		})
	}
	<-allIn
	// A negative check needs a wait: the other pods must not get a sandbox
	// call in while the first ones hold every slot.
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	blocked := entered
	mu.Unlock()
	close(release) // the rest go through as slots free up
	wg.Wait()
	if blocked > slots || most > slots {
		t.Fatalf("%d sandbox creations entered while %d held every slot (most at once: %d), want at most %d",
			blocked, slots, most, slots)
	}
	if n := len(e.rs.Sandboxes); n != pods {
		t.Fatalf("%d sandboxes created, want %d", n, pods)
	}
}
