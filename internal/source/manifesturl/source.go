// Package manifesturl is berth's static pod source from a URL (upstream's
// http source: staticPodURL, --manifest-url, with staticPodURLHeader): the
// URL is read when berth starts and then httpCheckFrequency after each
// read ends; it serves one Pod or a PodList, made static pods as
// manifests are (names with the node's, UIDs from the content and the
// URL, source "http").
//
// As upstream: content that did not change since the last read is not
// parsed again; a failed request, a status other than 200 or content
// that cannot be used keeps the pods read before (and is logged, quietly
// after three times in a row); an empty body means no pods.
package manifesturl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/source/file"
)

const (
	// defaultPeriod is upstream's httpCheckFrequency default.
	defaultPeriod = 20 * time.Second
	// requestTimeout is upstream's: a request taking longer is retried
	// at the next period.
	requestTimeout = 10 * time.Second
	// maxSize is upstream's limit on what the URL serves.
	maxSize = 10 << 20
	// loudFailures is how many failures in a row are logged at info.
	loudFailures = 3
)

// Options configures a Source.
type Options struct {
	// URL is staticPodURL.
	URL string
	// Header is sent with every request (staticPodURLHeader).
	Header http.Header
	// NodeName is appended to pod names and set as spec.nodeName.
	NodeName string
	// Period is httpCheckFrequency; 0 means 20 s.
	Period time.Duration
	// Client makes the requests; nil means one with upstream's 10 s
	// timeout.
	Client *http.Client
	// Now stamps when a pod was first seen; nil means time.Now.
	Now func() time.Time
}

// Source reads the static pod URL. Create it with New and call Run once.
type Source struct {
	opts Options
	// Run's goroutine only:
	data     []byte // the body last read
	failures int    // failed reads in a row
}

// New returns a Source for opts.
func New(opts Options) *Source {
	if opts.Period <= 0 {
		opts.Period = defaultPeriod
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: requestTimeout}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Source{opts: opts}
}

// Run sends a full snapshot of the URL's pods to out after each read that
// changes them, the first one included (so that the source is seen), until
// ctx is cancelled. The pods are shared and must be treated as read-only.
func (s *Source) Run(ctx context.Context, out chan<- []*v1.Pod) {
	logger := klog.FromContext(ctx).WithName("static-pod-url")
	logger.V(1).Info("Watching static pod URL", "url", s.opts.URL, "period", s.opts.Period)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pods, changed, err := s.read(ctx)
		s.logResult(logger, err)
		if changed {
			select {
			case out <- pods:
			case <-ctx.Done():
				return
			}
		}
		// The period counts from the end of a read, as upstream's
		// wait.Until.
		timer.Reset(s.opts.Period)
	}
}

// logResult logs a failed read, at info for the first few in a row, and
// the first success after failures.
func (s *Source) logResult(logger klog.Logger, err error) {
	switch {
	case err == nil && s.failures > 0:
		logger.Info("Read static pods from the URL again", "url", s.opts.URL)
		s.failures = 0
	case err == nil:
	case s.failures < loudFailures:
		logger.Info("Failed to read static pods from the URL; keeping the pods read before", "url", s.opts.URL, "err", err)
		s.failures++
	case s.failures == loudFailures:
		logger.Info("Failed to read static pods from the URL; further failures are logged at verbosity 4", "url", s.opts.URL, "err", err)
		s.failures++
	default:
		logger.V(4).Info("Failed to read static pods from the URL", "url", s.opts.URL, "err", err)
		s.failures++
	}
}

// read fetches the URL and returns the pods it now gives and whether they
// are to be sent: a new body that parses, or an empty one (no pods, sent
// along with its error as upstream does).
func (s *Source) read(ctx context.Context) ([]*v1.Pod, bool, error) {
	data, err := s.fetch(ctx)
	if err != nil {
		return nil, false, err
	}
	if len(data) == 0 {
		s.data = nil
		return []*v1.Pod{}, true, fmt.Errorf("zero-length data received from %v", s.opts.URL)
	}
	if bytes.Equal(data, s.data) {
		return nil, false, nil
	}
	// Remembered before parsing: a broken body is reported once, not
	// at every period.
	s.data = data
	pods, err := file.ParseURLManifest(data, s.opts.URL, s.opts.NodeName)
	if err != nil {
		return nil, false, fmt.Errorf("%v: %w", s.opts.URL, err)
	}
	seen := s.opts.Now().Format(source.SeenTimeLayout)
	for _, p := range pods {
		// The merger keeps the first time for a pod it already has.
		p.Annotations[source.AnnotationConfigSeen] = seen
	}
	return pods, true, nil
}

// fetch GETs the URL with the configured headers.
func (s *Source) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header = s.opts.Header.Clone()
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSize {
		return nil, errors.New("the static pod URL serves more than 10 MiB")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%v: %v", s.opts.URL, resp.Status)
	}
	return data, nil
}
