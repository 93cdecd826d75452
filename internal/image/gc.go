package image

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// GCRuntime is what image garbage collection needs from the runtime
// (internal/runtime.Manager).
type GCRuntime interface {
	ImageList(ctx context.Context) ([]*runtimeapi.Image, error)
	RemoveImage(ctx context.Context, id string) error
	// ImagesInUse names (by ID or reference) the images that must stay:
	// those of every container the runtime has, and its sandbox image.
	ImagesInUse(ctx context.Context) (map[string]bool, error)
}

// GCPolicy is upstream's ImageGCPolicy, from the KubeletConfiguration.
type GCPolicy struct {
	// Above HighThresholdPercent of the image file system in use, images
	// are removed until usage is down to LowThresholdPercent
	// (imageGCHighThresholdPercent, imageGCLowThresholdPercent).
	HighThresholdPercent, LowThresholdPercent int
	// MinAge: an image first seen more recently is never removed
	// (imageMinimumGCAge). MaxAge, when not 0: an image unused for longer
	// is removed whatever the usage (imageMaximumGCAge).
	MinAge, MaxAge time.Duration
}

// GCOptions configures image garbage collection.
type GCOptions struct {
	Runtime GCRuntime
	// ImageFs returns the image file system's capacity and available
	// bytes (from the stats collector's latest sample).
	ImageFs  func(ctx context.Context) (capacity, available uint64, err error)
	Policy   GCPolicy
	Recorder record.EventRecorder
	NodeRef  *v1.ObjectReference
	// Period is how often images are detected and collected (upstream's
	// ImageGCPeriod, 5 minutes).
	Period time.Duration
	Clock  clock.WithTicker
	// AfterCollect, if set, is told after each collection which images
	// (by ID) the runtime still has and when the collection began:
	// upstream's post-GC hook, with which the pull records of images
	// gone are pruned (Records.Prune).
	AfterCollect func(ctx context.Context, present map[string]bool, began time.Time)
}

// imageRecord is what image GC remembers of an image (upstream keeps it in
// memory too: a restart forgets when images were last used).
type imageRecord struct {
	firstDetected, lastUsed time.Time
	size                    int64
	pinned                  bool
}

// GC removes unused images, least recently used first, as upstream's
// image GC manager: when the image file system is above the high
// threshold, when an image was unused for longer than MaxAge, and on the
// eviction manager's request. Images in use, pinned by the runtime, or the
// runtime's sandbox image are never removed.
type GC struct {
	opts GCOptions

	mu      sync.Mutex // serializes collections; guards records
	records map[string]imageRecord
}

// NewGC returns an image GC; Run starts its periodic collection.
func NewGC(opts GCOptions) *GC {
	if opts.Period <= 0 {
		opts.Period = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Recorder == nil {
		opts.Recorder = &record.FakeRecorder{}
	}
	return &GC{opts: opts, records: map[string]imageRecord{}}
}

// Run detects the runtime's images at once and then every Period, as
// upstream's image manager does from its start (an image's age counts
// from its first detection), and collects them each Period; a failure
// that repeats is reported as an ImageGCFailed event on the node. With a
// high threshold of 100% and no maximum age only the eviction manager
// removes images (DeleteUnusedImages).
func (g *GC) Run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("imagegc")
	ctx = klog.NewContext(ctx, logger)
	collect := g.opts.Policy.HighThresholdPercent < 100 || g.opts.Policy.MaxAge > 0
	if !collect {
		logger.V(2).Info("imageGCHighThresholdPercent is 100 and imageMaximumGCAge is 0: periodic image garbage collection is off")
	}
	began := g.opts.Clock.Now()
	g.detect(ctx)
	t := g.opts.Clock.NewTicker(g.opts.Period)
	defer t.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if !collect {
			g.detect(ctx)
			continue
		}
		if err := g.GarbageCollect(ctx, began); err != nil {
			if failed {
				logger.Error(err, "Image garbage collection failed multiple times in a row")
				g.opts.Recorder.Event(g.opts.NodeRef, v1.EventTypeWarning, "ImageGCFailed", err.Error())
			} else {
				logger.Error(err, "Image garbage collection failed once; stats may not have been collected yet")
			}
			failed = true
			continue
		}
		failed = false
	}
}

// detect records the runtime's images and which are in use now.
func (g *GC) detect(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := g.evictionOrder(ctx, g.opts.Clock.Now()); err != nil {
		klog.FromContext(ctx).V(2).Info("Cannot detect images yet", "err", err)
	}
}

// GarbageCollect is one collection: images unused for longer than MaxAge
// (once berth has run that long), then, above the high threshold, enough
// of the least recently used to get down to the low one.
func (g *GC) GarbageCollect(ctx context.Context, began time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	logger := klog.FromContext(ctx)
	now := g.opts.Clock.Now()
	order, err := g.evictionOrder(ctx, now)
	if err != nil {
		return err
	}
	defer g.afterCollect(ctx, now)
	if p := g.opts.Policy; p.MaxAge > 0 && now.Sub(began) > p.MaxAge {
		var old []candidate
		order, old = splitOld(order, now, p.MaxAge)
		if err := g.remove(ctx, old); err != nil {
			return fmt.Errorf("wanted to free images older than %v, encountered errors in image deletion: %w", p.MaxAge, err)
		}
	}
	capacity, available, err := g.opts.ImageFs(ctx)
	if err != nil {
		return fmt.Errorf("image file system usage: %w", err)
	}
	toFree, usage, err := amountToFree(int64(capacity), int64(available), g.opts.Policy)
	if err != nil {
		g.opts.Recorder.Eventf(g.opts.NodeRef, v1.EventTypeWarning, "InvalidDiskCapacity", "%s", err.Error())
		return err
	}
	if toFree <= 0 {
		return nil
	}
	logger.Info("Disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold",
		"usage", usage, "highThreshold", g.opts.Policy.HighThresholdPercent, "amountToFree", toFree, "lowThreshold", g.opts.Policy.LowThresholdPercent)
	picked, freed := pickToFree(order, toFree, now, g.opts.Policy.MinAge)
	if err := g.remove(ctx, picked); err != nil {
		return fmt.Errorf("wanted to free %d bytes, but freed %d bytes space with errors in image deletion: %w", toFree, freed, err)
	}
	if freed < toFree {
		msg := fmt.Sprintf("Insufficient free disk space on the node's image filesystem (%d%% of %s used). "+
			"Failed to free sufficient space by deleting unused images (freed %d bytes). "+
			"Investigate disk usage, as it could be used by active images, logs, volumes, or other data.",
			usage, formatSize(int64(capacity)), freed)
		g.opts.Recorder.Eventf(g.opts.NodeRef, v1.EventTypeWarning, "FreeDiskSpaceFailed", "%s", msg)
		return errors.New(msg)
	}
	return nil
}

// DeleteUnusedImages removes every unused image past its minimum age: the
// eviction manager's node-level reclaim of the image file system.
func (g *GC) DeleteUnusedImages(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	klog.FromContext(ctx).Info("Attempting to delete unused images")
	now := g.opts.Clock.Now()
	order, err := g.evictionOrder(ctx, now)
	if err != nil {
		return err
	}
	defer g.afterCollect(ctx, now)
	picked, _ := pickToFree(order, math.MaxInt64, now, g.opts.Policy.MinAge)
	return g.remove(ctx, picked)
}

// afterCollect tells AfterCollect the images left: those detected, less
// those removed (g.mu held).
func (g *GC) afterCollect(ctx context.Context, began time.Time) {
	if g.opts.AfterCollect == nil {
		return
	}
	present := make(map[string]bool, len(g.records))
	for id := range g.records {
		present[id] = true
	}
	g.opts.AfterCollect(ctx, present, began)
}

// evictionOrder detects the runtime's images and returns those that may
// go, least recently used first.
func (g *GC) evictionOrder(ctx context.Context, now time.Time) ([]candidate, error) {
	images, err := g.opts.Runtime.ImageList(ctx)
	if err != nil {
		return nil, err
	}
	inUse, err := g.opts.Runtime.ImagesInUse(ctx)
	if err != nil {
		return nil, err
	}
	g.records = detect(g.records, images, inUse, now)
	return evictionOrder(g.records, images, inUse), nil
}

func (g *GC) remove(ctx context.Context, cs []candidate) error {
	var errs []error
	for _, c := range cs {
		klog.FromContext(ctx).Info("Removing image to free bytes", "imageID", c.id, "size", c.size)
		if err := g.opts.Runtime.RemoveImage(ctx, c.id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(g.records, c.id)
	}
	return errors.Join(errs...)
}

// candidate is an image that may be removed.
type candidate struct {
	id string
	imageRecord
}

// detect updates the records from the runtime's images at now: new images
// are first detected now, images in use are used now, gone images are
// forgotten. It returns the new records; old is not modified.
func detect(old map[string]imageRecord, images []*runtimeapi.Image, inUse map[string]bool, now time.Time) map[string]imageRecord {
	out := make(map[string]imageRecord, len(images))
	for _, img := range images {
		r, ok := old[img.GetId()]
		if !ok {
			r.firstDetected = now
		}
		if imageInUse(img, inUse) {
			r.lastUsed = now
		}
		r.size = int64(img.GetSize())
		r.pinned = img.GetPinned()
		out[img.GetId()] = r
	}
	return out
}

func imageInUse(img *runtimeapi.Image, inUse map[string]bool) bool {
	if inUse[img.GetId()] {
		return true
	}
	for _, n := range append(slices.Clone(img.GetRepoTags()), img.GetRepoDigests()...) {
		if inUse[n] {
			return true
		}
	}
	return false
}

// evictionOrder lists the images that are neither in use nor pinned,
// least recently used first, ties broken by first detection (upstream's
// byLastUsedAndDetected).
func evictionOrder(records map[string]imageRecord, images []*runtimeapi.Image, inUse map[string]bool) []candidate {
	var out []candidate
	for _, img := range images {
		r, ok := records[img.GetId()]
		if !ok || r.pinned || imageInUse(img, inUse) {
			continue
		}
		out = append(out, candidate{id: img.GetId(), imageRecord: r})
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		if c := a.lastUsed.Compare(b.lastUsed); c != 0 {
			return c
		}
		return cmp.Or(a.firstDetected.Compare(b.firstDetected), cmp.Compare(a.id, b.id))
	})
	return out
}

// splitOld separates the images unused for longer than maxAge.
func splitOld(order []candidate, now time.Time, maxAge time.Duration) (keep, old []candidate) {
	for _, c := range order {
		if now.Sub(c.lastUsed) > maxAge {
			old = append(old, c)
		} else {
			keep = append(keep, c)
		}
	}
	return keep, old
}

// pickToFree takes images in order, skipping those used now and those
// first seen less than minAge ago, until bytes are freed; it returns them
// and the bytes they free.
func pickToFree(order []candidate, bytes int64, now time.Time, minAge time.Duration) ([]candidate, int64) {
	var out []candidate
	var freed int64
	for _, c := range order {
		if freed >= bytes {
			break
		}
		if !c.lastUsed.Before(now) || now.Sub(c.firstDetected) < minAge {
			continue
		}
		out = append(out, c)
		freed += c.size
	}
	return out, freed
}

// amountToFree is how many bytes to free to get from the image file
// system's usage down to the low threshold, 0 when usage is below the
// high one, and the usage in percent, as upstream computes them.
func amountToFree(capacity, available int64, p GCPolicy) (int64, int, error) {
	if capacity == 0 {
		return 0, 0, errors.New("invalid capacity 0 on image filesystem")
	}
	available = min(available, capacity)
	usage := 100 - int(available*100/capacity)
	if usage < p.HighThresholdPercent {
		return 0, usage, nil
	}
	return capacity*int64(100-p.LowThresholdPercent)/100 - available, usage, nil
}

// formatSize is upstream's human-readable size for the event message.
func formatSize(n int64) string {
	const (
		kib = 1024
		mib = 1024 * kib
		gib = 1024 * mib
		tib = 1024 * gib
	)
	f := float64(n)
	switch {
	case f < kib:
		return fmt.Sprintf("%d B", n)
	case f < mib:
		return fmt.Sprintf("%.1f KiB", f/kib)
	case f < gib:
		return fmt.Sprintf("%.1f MiB", f/mib)
	case f < tib:
		return fmt.Sprintf("%.1f GiB", f/gib)
	}
	return fmt.Sprintf("%.1f TiB", f/tib)
}
