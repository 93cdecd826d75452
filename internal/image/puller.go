// Package image makes sure a container's image is on the node before the
// container is created: it applies the pull policy, pulls through the CRI
// image service with a per-image back-off, bounds how many pulls run at once,
// and reports progress as the upstream kubelet does (the same event reasons
// and messages, the same waiting reasons). Credentials come from a Keyring;
// PullSecretKeyring reads a pod's imagePullSecrets and matches them to the
// registry as upstream's credentialprovider does.
package image

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
)

// Service is the part of the CRI image service the puller needs; both
// internalapi.ImageManagerService and its fake satisfy it.
type Service interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
	PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error)
}

// Waiting reasons, as the upstream kubelet reports them.
const (
	ReasonErrImagePull              = "ErrImagePull"
	ReasonImagePullBackOff          = "ImagePullBackOff"
	ReasonErrImageNeverPull         = "ErrImageNeverPull"
	ReasonInvalidImageName          = "InvalidImageName"
	ReasonImageInspectError         = "ImageInspectError"
	ReasonRegistryUnavailable       = "RegistryUnavailable"
	ReasonSignatureValidationFailed = "SignatureValidationFailed"
)

// Event reasons, as the upstream kubelet records them.
const (
	EventPulling           = "Pulling"
	EventPulled            = "Pulled"
	EventFailed            = "Failed"
	EventInspectFailed     = "InspectFailed"
	EventErrImageNeverPull = "ErrImageNeverPull"
	EventBackOff           = "BackOff"
	// EventFailedToRetrieveImagePullSecret is recorded on the pod.
	EventFailedToRetrieveImagePullSecret = "FailedToRetrieveImagePullSecret"
)

// backOffReportDelay is when the pod is synced again after a failed pull,
// to report that it is backing off.
const backOffReportDelay = time.Second

// Upstream's image pull back-off (kubelet.go: imageBackOffPeriod, MaxImageBackOff).
const (
	backOffInitial = 10 * time.Second
	backOffMax     = 300 * time.Second
)

// Options configures a Puller.
type Options struct {
	Service Service
	// Recorder receives the Pulling/Pulled/Failed/BackOff events; nil
	// records nothing.
	Recorder record.EventRecorder
	// Clock drives the back-off; nil means the real clock.
	Clock clock.Clock
	// MaxParallelPulls bounds concurrent pulls; 0 means unlimited and 1
	// serialises them.
	MaxParallelPulls int
	// Keyring supplies registry credentials; nil means NoKeyring.
	Keyring Keyring
	// Records, if set, keeps the pull records on disk, and Verify decides
	// when a pod must prove that it may use an image already on the node
	// (imagePullCredentialsVerificationPolicy). Without Records nothing is
	// verified, as upstream with KubeletEnsureSecretPulledImages off.
	Records *Records
	Verify  VerifyPolicy
}

// Puller ensures images are present. It is safe for concurrent use.
type Puller struct {
	svc      Service
	recorder record.EventRecorder
	clock    clock.Clock
	keyring  Keyring
	records  *Records
	verify   VerifyPolicy
	recover  sync.Once // the records left by the last run, on the first EnsureImage
	backOff  *flowcontrol.Backoff
	// tokens is a semaphore of MaxParallelPulls slots; nil when unlimited.
	tokens chan struct{}

	mu sync.Mutex
	// lastFailure remembers, per back-off key, why the last pull failed and
	// when, so a back-off can say why and for how long.
	lastFailure map[string]pullFailure
}

type pullFailure struct {
	message string
	at      time.Time
}

// PullError says why a container cannot have its image yet.
type PullError struct {
	Reason  string // one of the Reason* constants
	Message string
	// RetryAfter is when trying again makes sense (the remaining back-off);
	// zero when only a change on the node or in the spec would help.
	RetryAfter time.Duration
	Err        error
}

func (e *PullError) Error() string { return e.Reason + ": " + e.Message }
func (e *PullError) Unwrap() error { return e.Err }

// New returns a Puller.
func New(opts Options) *Puller {
	p := &Puller{
		svc:         opts.Service,
		recorder:    opts.Recorder,
		clock:       opts.Clock,
		keyring:     opts.Keyring,
		records:     opts.Records,
		verify:      opts.Verify,
		lastFailure: map[string]pullFailure{},
	}
	if p.clock == nil {
		p.clock = clock.RealClock{}
	}
	if p.keyring == nil {
		p.keyring = NoKeyring{}
	}
	// NewFakeBackOff only means "with this clock"; it is the same Backoff.
	p.backOff = flowcontrol.NewFakeBackOff(backOffInitial, backOffMax, p.clock)
	if opts.MaxParallelPulls > 0 {
		p.tokens = make(chan struct{}, opts.MaxParallelPulls)
	}
	return p
}

// EnsureImage makes sure the image of container c of pod is present,
// pulling it if the pull policy says so, and returns the image ID the
// runtime resolved it to. When the container cannot have its image yet it
// returns the waiting reason and message for the container status, and an
// error (a *PullError) that says when a retry makes sense.
func (p *Puller) EnsureImage(ctx context.Context, pod *v1.Pod, c *v1.Container, sandboxConfig *runtimeapi.PodSandboxConfig) (imageRef string, w *container.Waiting, err error) {
	return p.ensure(ctx, pod, containerRef(pod, c), c.Image, pullPolicy(c.ImagePullPolicy, c.Image), sandboxConfig)
}

// EnsureVolumeImage is EnsureImage for the image of an image volume: its
// reference and pull policy, the pod's pull secrets, events on the pod
// (upstream's getImageVolumes).
func (p *Puller) EnsureVolumeImage(ctx context.Context, pod *v1.Pod, src *v1.ImageVolumeSource, sandboxConfig *runtimeapi.PodSandboxConfig) (imageRef string, w *container.Waiting, err error) {
	return p.ensure(ctx, pod, podRef(pod), src.Reference, pullPolicy(src.PullPolicy, src.Reference), sandboxConfig)
}

func (p *Puller) ensure(ctx context.Context, pod *v1.Pod, ref *v1.ObjectReference, requested string, policy v1.PullPolicy, sandboxConfig *runtimeapi.PodSandboxConfig) (imageRef string, w *container.Waiting, err error) {

	img, err := WithDefaultTag(requested)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: %v", requested, err)
		p.event(ref, v1.EventTypeWarning, EventInspectFailed, msg)
		return fail(ReasonInvalidImageName, msg, 0, err)
	}
	spec := &runtimeapi.ImageSpec{Image: img, UserSpecifiedImage: requested, Annotations: pod.Annotations}

	if policy != v1.PullAlways {
		id, err := p.imageID(ctx, spec)
		if err != nil {
			msg := fmt.Sprintf("Failed to inspect image %q: %v", requested, grpcMessage(err))
			p.event(ref, v1.EventTypeWarning, EventInspectFailed, msg)
			return fail(ReasonImageInspectError, msg, 0, err)
		}
		if id != "" {
			if p.records == nil {
				p.event(ref, v1.EventTypeNormal, EventPulled, fmt.Sprintf("Container image %q already present on machine", requested))
				return id, nil, nil
			}
			if !p.mustPull(ctx, pod, requested, spec.Image, id) {
				p.event(ref, v1.EventTypeNormal, EventPulled, fmt.Sprintf("Container image %q already present on machine and can be accessed by the pod", requested))
				return id, nil, nil
			}
			// Present, but this pod has not shown that it may use it:
			// it pulls with its own credentials. With policy Never it
			// fails as if the image were absent, as upstream, so that
			// the image's presence is not given away.
		}
		if policy == v1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", requested)
			p.event(ref, v1.EventTypeWarning, EventErrImageNeverPull, msg)
			return fail(ReasonErrImageNeverPull, msg, 0, errors.New(msg))
		}
	}
	return p.pull(ctx, ref, pod, requested, spec, sandboxConfig)
}

// mustPull reads the records and asks the verification policy whether
// the pod must pull image (requested as the pod wrote it), present as
// imageRef. Records that cannot be read mean a pull, as upstream.
func (p *Puller) mustPull(ctx context.Context, pod *v1.Pod, requested, image, imageRef string) bool {
	logger := klog.FromContext(ctx)
	p.recover.Do(func() {
		p.records.recover(logger, func(image string) (string, error) {
			return p.imageID(ctx, &runtimeapi.ImageSpec{Image: image})
		}, metav1.NewTime(p.clock.Now()))
	})
	if !p.verify.Verifying() {
		return false
	}
	record, intent, err := p.records.lookup(requested, imageRef)
	if err != nil {
		logger.Error(err, "Unable to access cache records about image pulls", "image", requested)
		return true
	}
	var presented access
	if r, err := ParseReference(image); err == nil {
		creds, _ := p.keyring.Lookup(ctx, pod, r.Repository())
		presented = presentedAccess(creds)
	}
	v := p.verify.mustPull(requested, record, intent, presented)
	if v.remember != nil {
		creds := pullCredentials(&Credential{Secret: v.remember})
		if err := p.records.remember(requested, imageRef, &creds, metav1.NewTime(p.clock.Now())); err != nil {
			logger.Error(err, "Failed to write image pulled record", "image", requested, "imageRef", imageRef)
		}
	}
	return v.pull
}

func (p *Puller) pull(ctx context.Context, ref *v1.ObjectReference, pod *v1.Pod, requested string, spec *runtimeapi.ImageSpec, sandboxConfig *runtimeapi.PodSandboxConfig) (string, *container.Waiting, error) {
	logger := klog.FromContext(ctx)
	key := string(pod.UID) + "_" + requested
	now := p.clock.Now()
	if p.backOff.IsInBackOffSinceUpdate(key, now) {
		msg := fmt.Sprintf("Back-off pulling image %q", requested)
		p.event(ref, v1.EventTypeNormal, EventBackOff, msg)
		retry := p.backOff.Get(key)
		p.mu.Lock()
		last, ok := p.lastFailure[key]
		p.mu.Unlock()
		if ok {
			// The waiting message carries why the last pull failed.
			msg = fmt.Sprintf("%s: %s", msg, last.message)
			retry = last.at.Add(retry).Sub(now)
		}
		return fail(ReasonImagePullBackOff, msg, retry, errors.New(msg))
	}
	p.mu.Lock()
	delete(p.lastFailure, key)
	p.mu.Unlock()

	p.event(ref, v1.EventTypeNormal, EventPulling, fmt.Sprintf("Pulling image %q", requested))
	if err := p.acquire(ctx); err != nil {
		return fail(ReasonErrImagePull, err.Error(), 0, err)
	}
	if p.records != nil {
		if err := p.records.startPull(requested); err != nil {
			p.release()
			msg := fmt.Sprintf("Failed to record image pull intent for container image %q: %v", requested, err)
			return fail(ReasonErrImagePull, msg, 0, err)
		}
	}
	pullStart := p.clock.Now()
	imageRef, used, missingSecrets, err := p.pullWithCredentials(ctx, pod, spec, sandboxConfig)
	p.release()
	end := p.clock.Now()
	if p.records != nil {
		creds := pullCredentials(used)
		p.records.endPull(logger, requested, imageRef, &creds, metav1.NewTime(end))
	}
	if err != nil {
		p.event(ref, v1.EventTypeWarning, EventFailed, fmt.Sprintf("Failed to pull image %q: %v", requested, grpcMessage(err)))
		if len(missingSecrets) > 0 {
			// Only worth saying when the pull failed, as upstream does.
			p.event(podRef(pod), v1.EventTypeWarning, EventFailedToRetrieveImagePullSecret,
				fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missingSecrets, ", ")))
		}
		p.backOff.Next(key, end)
		reason, msg := classifyPullError(requested, err)
		p.forgetOldFailures(end)
		p.mu.Lock()
		p.lastFailure[key] = pullFailure{message: reason + ": " + msg, at: end}
		p.mu.Unlock()
		logger.V(2).Info("Image pull failed", "pod", klog.KObj(pod), "image", requested, "err", err)
		// Sync again soon, not when the back-off ends: the next sync reports
		// ImagePullBackOff, as upstream's status moves on from ErrImagePull.
		return fail(reason, msg, min(p.backOff.Get(key), backOffReportDelay), err)
	}

	// The size is informational: ignore failures to read it.
	var size uint64
	if resp, err := p.svc.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: imageRef}, false); err == nil && resp.GetImage() != nil {
		size = resp.GetImage().GetSize()
	}
	p.event(ref, v1.EventTypeNormal, EventPulled, fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes.",
		requested, end.Sub(pullStart).Truncate(time.Millisecond), end.Sub(now).Truncate(time.Millisecond), size))
	p.forgetOldFailures(end)
	return imageRef, nil, nil
}

// forgetOldFailures drops back-off state nobody has asked about for longer
// than the back-off could last, so pods that went away leave nothing behind.
func (p *Puller) forgetOldFailures(now time.Time) {
	p.backOff.GC()
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, f := range p.lastFailure {
		if now.Sub(f.at) > 2*backOffMax {
			delete(p.lastFailure, key)
		}
	}
}

// pullWithCredentials tries each credential the keyring has for the
// image's repository, as the upstream kubelet does, or pulls anonymously.
// It returns the credentials that pulled the image (nil for an anonymous
// pull), and the pull secrets the keyring could not read.
func (p *Puller) pullWithCredentials(ctx context.Context, pod *v1.Pod, spec *runtimeapi.ImageSpec, sandboxConfig *runtimeapi.PodSandboxConfig) (string, *Credential, []string, error) {
	var creds []Credential
	var missing []string
	if ref, err := ParseReference(spec.Image); err == nil {
		creds, missing = p.keyring.Lookup(ctx, pod, ref.Repository())
	}
	if len(creds) == 0 {
		id, err := p.svc.PullImage(ctx, spec, nil, sandboxConfig)
		return id, nil, missing, err
	}
	var errs []error
	for _, c := range creds {
		id, err := p.svc.PullImage(ctx, spec, c.Auth, sandboxConfig)
		if err == nil {
			return id, &c, missing, nil
		}
		errs = append(errs, err)
	}
	return "", nil, missing, errors.Join(errs...)
}

func (p *Puller) imageID(ctx context.Context, spec *runtimeapi.ImageSpec) (string, error) {
	resp, err := p.svc.ImageStatus(ctx, spec, false)
	if err != nil {
		return "", err
	}
	return resp.GetImage().GetId(), nil
}

func (p *Puller) acquire(ctx context.Context) error {
	if p.tokens == nil {
		return nil
	}
	select {
	case p.tokens <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a parallel image pull slot: %w", ctx.Err())
	}
}

func (p *Puller) release() {
	if p.tokens != nil {
		<-p.tokens
	}
}

func (p *Puller) event(ref *v1.ObjectReference, eventType, reason, msg string) {
	if p.recorder != nil {
		p.recorder.Event(ref, eventType, reason, msg)
	}
}

func fail(reason, msg string, retry time.Duration, err error) (string, *container.Waiting, error) {
	if retry < 0 {
		retry = 0
	}
	return "", &container.Waiting{Reason: reason, Message: msg}, &PullError{Reason: reason, Message: msg, RetryAfter: retry, Err: err}
}

// pullPolicy is a container's or image volume's policy, defaulted as the
// API server would (a static pod may reach berth undefaulted).
func pullPolicy(policy v1.PullPolicy, image string) v1.PullPolicy {
	if policy != "" {
		return policy
	}
	return DefaultPullPolicy(image)
}

// classifyPullError maps a failed pull to the waiting reason and message the
// upstream kubelet uses (images.evalCRIPullErr).
func classifyPullError(image string, err error) (reason, msg string) {
	m := grpcMessage(err)
	switch {
	case strings.HasPrefix(m, crierrors.ErrRegistryUnavailable.Error()):
		return ReasonRegistryUnavailable, fmt.Sprintf("image pull failed for %s because the registry is unavailable%s",
			image, strings.TrimPrefix(m, crierrors.ErrRegistryUnavailable.Error()))
	case strings.HasPrefix(m, crierrors.ErrSignatureValidationFailed.Error()):
		return ReasonSignatureValidationFailed, fmt.Sprintf("image pull failed for %s because the signature validation failed%s",
			image, strings.TrimPrefix(m, crierrors.ErrSignatureValidationFailed.Error()))
	}
	return ReasonErrImagePull, err.Error()
}

// grpcMessage is the message of a gRPC status error, without the
// "rpc error: code = ... desc =" prefix; other errors are returned whole.
func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// containerRef is the object reference events about container c are
// recorded against (upstream: kubecontainer.GenerateContainerRef).
func containerRef(pod *v1.Pod, c *v1.Container) *v1.ObjectReference {
	return &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Name:            pod.Name,
		Namespace:       pod.Namespace,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
		FieldPath:       container.FieldPath(pod, c.Name),
	}
}

// podRef is the object reference of events about the pod as a whole.
func podRef(pod *v1.Pod) *v1.ObjectReference {
	return &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Name:            pod.Name,
		Namespace:       pod.Namespace,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
	}
}
