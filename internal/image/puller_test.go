package image

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func testPod(image string, policy v1.PullPolicy) (*v1.Pod, *v1.Container) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "app", Image: image, ImagePullPolicy: policy,
		}}},
	}
	return pod, &pod.Spec.Containers[0]
}

// drain returns the events recorded so far.
func drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestEnsureImagePolicy(t *testing.T) {
	tests := []struct {
		name       string
		image      string
		policy     v1.PullPolicy
		present    []string
		statusErr  error
		wantRef    string
		wantReason string
		wantMsg    string
		wantPull   bool
		wantEvents []string
	}{
		{
			name: "IfNotPresent and present", image: "busybox:1.0", policy: v1.PullIfNotPresent,
			present: []string{"busybox:1.0"}, wantRef: "busybox:1.0",
			wantEvents: []string{`Normal Pulled Container image "busybox:1.0" already present on machine`},
		},
		{
			name: "IfNotPresent and absent pulls", image: "busybox:1.0", policy: v1.PullIfNotPresent,
			wantRef: "busybox:1.0", wantPull: true,
			wantEvents: []string{
				`Normal Pulling Pulling image "busybox:1.0"`,
				`Normal Pulled Successfully pulled image "busybox:1.0" in 0s (0s including waiting). Image size: 0 bytes.`,
			},
		},
		{
			name: "Always pulls although present", image: "busybox:1.0", policy: v1.PullAlways,
			present: []string{"busybox:1.0"}, wantRef: "busybox:1.0", wantPull: true,
			wantEvents: []string{
				`Normal Pulling Pulling image "busybox:1.0"`,
				`Normal Pulled Successfully pulled image "busybox:1.0" in 0s (0s including waiting). Image size: 0 bytes.`,
			},
		},
		{
			name: "Never and present", image: "busybox:1.0", policy: v1.PullNever,
			present: []string{"busybox:1.0"}, wantRef: "busybox:1.0",
			wantEvents: []string{`Normal Pulled Container image "busybox:1.0" already present on machine`},
		},
		{
			name: "Never and absent", image: "busybox:1.0", policy: v1.PullNever,
			wantReason: ReasonErrImageNeverPull,
			wantMsg:    `Container image "busybox:1.0" is not present with pull policy of Never`,
			wantEvents: []string{`Warning ErrImageNeverPull Container image "busybox:1.0" is not present with pull policy of Never`},
		},
		{
			name: "default tag is applied before the lookup", image: "busybox", policy: v1.PullIfNotPresent,
			present: []string{"busybox:latest"}, wantRef: "busybox:latest",
			wantEvents: []string{`Normal Pulled Container image "busybox" already present on machine`},
		},
		{
			name: "unset policy with latest means Always", image: "busybox", present: []string{"busybox:latest"},
			wantRef: "busybox:latest", wantPull: true,
			wantEvents: []string{
				`Normal Pulling Pulling image "busybox"`,
				`Normal Pulled Successfully pulled image "busybox" in 0s (0s including waiting). Image size: 0 bytes.`,
			},
		},
		{
			name: "unset policy with a tag means IfNotPresent", image: "busybox:1.0", present: []string{"busybox:1.0"},
			wantRef:    "busybox:1.0",
			wantEvents: []string{`Normal Pulled Container image "busybox:1.0" already present on machine`},
		},
		{
			name: "invalid name", image: "Busy Box", policy: v1.PullIfNotPresent,
			wantReason: ReasonInvalidImageName,
			wantMsg:    `Failed to apply default image tag "Busy Box": couldn't parse image name "Busy Box": invalid reference format: repository name (library/Busy Box) must be lowercase`,
			wantEvents: []string{`Warning InspectFailed Failed to apply default image tag "Busy Box": couldn't parse image name "Busy Box": invalid reference format: repository name (library/Busy Box) must be lowercase`},
		},
		{
			name: "status error", image: "busybox:1.0", policy: v1.PullIfNotPresent,
			statusErr:  status.Error(codes.Unavailable, "boom"),
			wantReason: ReasonImageInspectError,
			wantMsg:    `Failed to inspect image "busybox:1.0": boom`,
			wantEvents: []string{`Warning InspectFailed Failed to inspect image "busybox:1.0": boom`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := critesting.NewFakeImageService()
			svc.SetFakeImages(tt.present)
			if tt.statusErr != nil {
				svc.InjectError("ImageStatus", tt.statusErr)
			}
			rec := record.NewFakeRecorder(10)
			p := New(Options{Service: svc, Recorder: rec, Clock: clocktesting.NewFakeClock(time.Unix(1000, 0))})
			pod, c := testPod(tt.image, tt.policy)

			ref, w, err := p.EnsureImage(context.Background(), pod, c, nil)

			if tt.wantReason == "" {
				if err != nil || w != nil || ref != tt.wantRef {
					t.Fatalf("EnsureImage = %q, %v, %v; want %q", ref, w, err, tt.wantRef)
				}
			} else {
				var pe *PullError
				if !errors.As(err, &pe) || w == nil || w.Reason != tt.wantReason || w.Message != tt.wantMsg || pe.Reason != tt.wantReason {
					t.Fatalf("EnsureImage = %q, %+v, %v; want reason %q message %q", ref, w, err, tt.wantReason, tt.wantMsg)
				}
			}
			pulled := false
			for _, call := range svc.Called {
				pulled = pulled || call == "PullImage"
			}
			if pulled != tt.wantPull {
				t.Errorf("pulled = %v, want %v (calls %v)", pulled, tt.wantPull, svc.Called)
			}
			if got := drain(rec); !reflect.DeepEqual(got, tt.wantEvents) {
				t.Errorf("events:\n got %q\nwant %q", got, tt.wantEvents)
			}
		})
	}
}

func TestEnsureImageBackOff(t *testing.T) {
	svc := critesting.NewFakeImageService()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	rec := record.NewFakeRecorder(100)
	p := New(Options{Service: svc, Recorder: rec, Clock: clk})
	pod, c := testPod("registry.example/app:1", v1.PullIfNotPresent)
	pullErr := status.Error(codes.NotFound, "not found")
	const pullMsg = "rpc error: code = NotFound desc = not found"
	ctx := context.Background()

	type step struct {
		advance    time.Duration
		failPull   bool
		wantReason string // "" means success
		wantMsg    string
		wantRetry  time.Duration
		wantEvents []string
	}
	steps := []step{
		{failPull: true, wantReason: ReasonErrImagePull, wantMsg: pullMsg, wantRetry: backOffReportDelay, wantEvents: []string{
			`Normal Pulling Pulling image "registry.example/app:1"`,
			`Warning Failed Failed to pull image "registry.example/app:1": not found`,
		}},
		{advance: 4 * time.Second, wantReason: ReasonImagePullBackOff,
			wantMsg:    `Back-off pulling image "registry.example/app:1": ErrImagePull: ` + pullMsg,
			wantRetry:  6 * time.Second,
			wantEvents: []string{`Normal BackOff Back-off pulling image "registry.example/app:1"`}},
		{advance: 6 * time.Second, failPull: true, wantReason: ReasonErrImagePull, wantMsg: pullMsg, wantRetry: backOffReportDelay, wantEvents: []string{
			`Normal Pulling Pulling image "registry.example/app:1"`,
			`Warning Failed Failed to pull image "registry.example/app:1": not found`,
		}},
		{advance: 19 * time.Second, wantReason: ReasonImagePullBackOff,
			wantMsg:    `Back-off pulling image "registry.example/app:1": ErrImagePull: ` + pullMsg,
			wantRetry:  time.Second,
			wantEvents: []string{`Normal BackOff Back-off pulling image "registry.example/app:1"`}},
		{advance: time.Second, wantEvents: []string{
			`Normal Pulling Pulling image "registry.example/app:1"`,
			`Normal Pulled Successfully pulled image "registry.example/app:1" in 0s (0s including waiting). Image size: 0 bytes.`,
		}},
	}
	for i, s := range steps {
		clk.Step(s.advance)
		if s.failPull {
			svc.InjectError("PullImage", pullErr)
		}
		ref, w, err := p.EnsureImage(ctx, pod, c, nil)
		if s.wantReason == "" {
			if err != nil || ref == "" {
				t.Fatalf("step %d: EnsureImage = %q, %v, %v; want success", i, ref, w, err)
			}
		} else {
			var pe *PullError
			if !errors.As(err, &pe) {
				t.Fatalf("step %d: err = %v, want a *PullError", i, err)
			}
			if w.Reason != s.wantReason || w.Message != s.wantMsg || pe.RetryAfter != s.wantRetry {
				t.Errorf("step %d: got %q %q retry %v; want %q %q retry %v", i, w.Reason, w.Message, pe.RetryAfter, s.wantReason, s.wantMsg, s.wantRetry)
			}
		}
		if got := drain(rec); !reflect.DeepEqual(got, s.wantEvents) {
			t.Errorf("step %d events:\n got %q\nwant %q", i, got, s.wantEvents)
		}
	}

	// The back-off is per pod: another pod pulls the same image at once.
	other, oc := testPod("registry.example/app:1", v1.PullAlways)
	other.UID = "uid-2"
	svc.InjectError("PullImage", pullErr)
	if _, w, _ := p.EnsureImage(ctx, pod, c, nil); w != nil {
		t.Fatalf("image is present now, got %+v", w)
	}
	if _, w, _ := p.EnsureImage(ctx, other, oc, nil); w == nil || w.Reason != ReasonErrImagePull {
		t.Fatalf("other pod: got %+v, want ErrImagePull", w)
	}
}

// blockingService lets a test hold pulls open and count how many run at once.
type blockingService struct {
	mu      sync.Mutex
	active  int
	max     int
	entered chan struct{}
	release chan struct{}
	auths   []*runtimeapi.AuthConfig
	failFor map[string]bool // by username
}

func (b *blockingService) ImageStatus(context.Context, *runtimeapi.ImageSpec, bool) (*runtimeapi.ImageStatusResponse, error) {
	return &runtimeapi.ImageStatusResponse{}, nil
}

func (b *blockingService) PullImage(_ context.Context, spec *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	b.mu.Lock()
	b.auths = append(b.auths, auth)
	if auth != nil && b.failFor[auth.Username] {
		b.mu.Unlock()
		return "", errors.New("unauthorized")
	}
	b.active++
	b.max = max(b.max, b.active)
	b.mu.Unlock()
	if b.entered != nil {
		b.entered <- struct{}{}
		<-b.release
	}
	b.mu.Lock()
	b.active--
	b.mu.Unlock()
	return "sha256:" + spec.Image, nil
}

func TestEnsureImageParallelLimit(t *testing.T) {
	for _, limit := range []int{0, 1, 2} {
		const pulls = 4
		svc := &blockingService{entered: make(chan struct{}), release: make(chan struct{})}
		p := New(Options{Service: svc, MaxParallelPulls: limit})
		var wg sync.WaitGroup
		for i := range pulls {
			pod, c := testPod("busybox:1.0", v1.PullAlways)
			pod.UID = types.UID(fmt.Sprint("uid-", i))
			wg.Go(func() {
				if _, w, err := p.EnsureImage(context.Background(), pod, c, nil); err != nil {
					t.Errorf("EnsureImage: %v %v", w, err)
				}
			})
		}
		// Let exactly `width` pulls in before releasing any: with a limit,
		// more cannot enter until one finishes.
		width := pulls
		if limit > 0 {
			width = limit
		}
		for range width {
			<-svc.entered
		}
		for i := range pulls {
			svc.release <- struct{}{}
			if i+width < pulls {
				<-svc.entered
			}
		}
		wg.Wait()
		if svc.max != width {
			t.Errorf("limit %d: at most %d pulls ran at once, want %d", limit, svc.max, width)
		}
	}
}

type staticKeyring []*runtimeapi.AuthConfig

func (k staticKeyring) Lookup(_ context.Context, _ *v1.Pod, repo string) ([]Credential, []string) {
	if repo != "registry.example/app" {
		return nil, nil
	}
	var out []Credential
	for _, a := range k {
		out = append(out, Credential{Auth: a})
	}
	return out, nil
}

func TestEnsureImageCredentials(t *testing.T) {
	svc := &blockingService{failFor: map[string]bool{"first": true}}
	keys := staticKeyring{{Username: "first"}, {Username: "second"}}
	p := New(Options{Service: svc, Keyring: keys})
	pod, c := testPod("registry.example/app:1", v1.PullAlways)
	if _, w, err := p.EnsureImage(context.Background(), pod, c, nil); err != nil {
		t.Fatalf("EnsureImage: %v %v", w, err)
	}
	if len(svc.auths) != 2 || svc.auths[0].Username != "first" || svc.auths[1].Username != "second" {
		t.Errorf("pulled with %v, want first then second", svc.auths)
	}

	// No credentials for other repositories: an anonymous pull.
	svc.auths = nil
	pod, c = testPod("busybox:1.0", v1.PullAlways)
	if _, _, err := p.EnsureImage(context.Background(), pod, c, nil); err != nil || len(svc.auths) != 1 || svc.auths[0] != nil {
		t.Errorf("pulled with %v (err %v), want one anonymous pull", svc.auths, err)
	}
}
