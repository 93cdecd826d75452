package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// Records keeps what the kubelet knows of its image pulls on disk, in
// upstream's layout and format, so that an upstream kubelet and berth read
// each other's records:
//
//	<root>/image_manager/pulling/sha256-<hex of image>      ImagePullIntent
//	<root>/image_manager/pulled/sha256-<hex of imageRef>    ImagePulledRecord
//
// both kubelet.config.k8s.io/v1beta1 JSON. An intent exists while a pull
// of the image (the pod's `image` field) is under way, or was when the
// kubelet stopped; a pulled record maps the image ID the runtime gave to
// the credentials that pulled it, per image name without tag or digest.
// It is safe for concurrent use.
type Records struct {
	pulling, pulled string

	mu      sync.Mutex
	intents map[string]int // image -> pulls in flight
}

const (
	recordPrefix = "sha256-"
	recordTmp    = ".tmp"
)

// OpenRecords opens (creating) the records under rootDir.
func OpenRecords(rootDir string) (*Records, error) {
	r := &Records{
		pulling: filepath.Join(rootDir, "image_manager", "pulling"),
		pulled:  filepath.Join(rootDir, "image_manager", "pulled"),
		intents: map[string]int{},
	}
	for _, d := range []string{r.pulling, r.pulled} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image pull records: %w", err)
		}
	}
	return r, nil
}

func recordName(key string) string {
	return fmt.Sprintf("%s%x", recordPrefix, sha256.Sum256([]byte(key)))
}

// startPull records the intent to pull image, before the pull.
func (r *Records) startPull(image string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	intent := kubeletconfig.ImagePullIntent{Image: image}
	intent.APIVersion, intent.Kind = kubeletconfig.SchemeGroupVersion.String(), "ImagePullIntent"
	if err := writeRecord(r.pulling, recordName(image), &intent); err != nil {
		return fmt.Errorf("failed to record image pull intent: %w", err)
	}
	r.intents[image]++
	return nil
}

// endPull ends one pull of image: when it succeeded (imageRef not empty)
// the pulled record of imageRef gains creds; the intent goes with the last
// pull of image in flight. A record that cannot be written keeps the
// intent, so that the image still counts as pulled by the kubelet.
func (r *Records) endPull(logger klog.Logger, image, imageRef string, creds *kubeletconfig.ImagePullCredentials, now metav1.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if imageRef != "" {
		if err := r.mergeLocked(image, imageRef, creds, now); err != nil {
			logger.Error(err, "Failed to write image pulled record", "image", image, "imageRef", imageRef)
			return
		}
	}
	if r.intents[image] > 1 {
		r.intents[image]--
		return
	}
	if err := removeRecord(r.pulling, recordName(image)); err != nil {
		logger.Error(err, "Failed to remove image pull intent", "image", image)
		return
	}
	delete(r.intents, image)
}

// remember adds creds for image to imageRef's record.
func (r *Records) remember(image, imageRef string, creds *kubeletconfig.ImagePullCredentials, now metav1.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mergeLocked(image, imageRef, creds, now)
}

func (r *Records) mergeLocked(image, imageRef string, creds *kubeletconfig.ImagePullCredentials, now metav1.Time) error {
	old, err := r.pulledLocked(imageRef)
	if err != nil {
		// A record that cannot be read is replaced.
		old = nil
	}
	next, changed, err := mergeRecord(old, imageRef, image, creds, now)
	if err != nil || !changed {
		return err
	}
	next.APIVersion, next.Kind = kubeletconfig.SchemeGroupVersion.String(), "ImagePulledRecord"
	return writeRecord(r.pulled, recordName(imageRef), next)
}

// lookup returns imageRef's pulled record (nil if none) and whether a
// pull of image is or was in flight.
func (r *Records) lookup(image, imageRef string) (*kubeletconfig.ImagePulledRecord, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.pulledLocked(imageRef)
	if err != nil {
		return nil, false, err
	}
	if rec != nil || r.intents[image] > 0 {
		return rec, r.intents[image] > 0, nil
	}
	var intent kubeletconfig.ImagePullIntent
	found, err := readRecord(r.pulling, recordName(image), "ImagePullIntent", &intent)
	if err != nil {
		return nil, false, err
	}
	return nil, found && intent.Image == image, nil
}

func (r *Records) pulledLocked(imageRef string) (*kubeletconfig.ImagePulledRecord, error) {
	var rec kubeletconfig.ImagePulledRecord
	found, err := readRecord(r.pulled, recordName(imageRef), "ImagePulledRecord", &rec)
	if err != nil || !found || rec.ImageRef != imageRef {
		return nil, err
	}
	return &rec, nil
}

// recover turns the intents left by a kubelet that stopped during a pull
// into pulled records without credentials for the images that are
// present (imageID says), as upstream does at start: every pod must then
// verify its access to them.
func (r *Records) recover(logger klog.Logger, imageID func(image string) (string, error), now metav1.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	entries, err := os.ReadDir(r.pulling)
	if err != nil {
		logger.Error(err, "Cannot list image pull intents")
		return
	}
	for _, e := range entries {
		if !validRecordFile(e) {
			continue
		}
		var intent kubeletconfig.ImagePullIntent
		if found, err := readRecord(r.pulling, e.Name(), "ImagePullIntent", &intent); err != nil || !found {
			logger.Info("Ignoring image pull intent that cannot be read", "file", e.Name(), "err", err)
			continue
		}
		if r.intents[intent.Image] > 0 {
			continue
		}
		ref, err := imageID(intent.Image)
		if err != nil || ref == "" {
			// Not there, or the runtime cannot say: the intent stays, and
			// keeps the image verified.
			continue
		}
		if err := r.mergeLocked(intent.Image, ref, nil, now); err != nil {
			logger.Error(err, "Failed to write image pulled record", "image", intent.Image, "imageRef", ref)
			continue
		}
		if err := removeRecord(r.pulling, e.Name()); err != nil {
			logger.V(2).Info("Failed to remove image pull intent", "image", intent.Image, "err", err)
		}
	}
}

// Prune removes the pulled records of images the runtime no longer has
// (present, by ID), last updated before until (when the image list was
// taken): upstream's PruneUnknownRecords, run after image GC.
func (r *Records) Prune(ctx context.Context, present map[string]bool, until time.Time) {
	logger := klog.FromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	entries, err := os.ReadDir(r.pulled)
	if err != nil {
		logger.Error(err, "Cannot list image pulled records")
		return
	}
	for _, e := range entries {
		if !validRecordFile(e) {
			continue
		}
		var rec kubeletconfig.ImagePulledRecord
		if found, err := readRecord(r.pulled, e.Name(), "ImagePulledRecord", &rec); err != nil || !found {
			continue
		}
		if present[rec.ImageRef] || !rec.LastUpdatedTime.Time.Before(until) {
			continue
		}
		if err := removeRecord(r.pulled, e.Name()); err != nil {
			logger.Error(err, "Failed to remove an image pulled record", "imageRef", rec.ImageRef)
		}
	}
}

func validRecordFile(e fs.DirEntry) bool {
	return !e.IsDir() && strings.HasPrefix(e.Name(), recordPrefix) && !strings.HasSuffix(e.Name(), recordTmp)
}

// writeRecord writes obj as JSON to dir/name atomically (a temporary file
// renamed into place), as upstream does.
func writeRecord(dir, name string, obj any) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	path := filepath.Join(dir, name)
	tmp := path + recordTmp
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readRecord decodes dir/name into obj, strictly, checking its kind and
// API version. A missing file is no error (found false).
func readRecord(dir, name, kind string, obj any) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return true, fmt.Errorf("decode %s: %w", name, err)
	}
	if tm.Kind != kind || tm.APIVersion != kubeletconfig.SchemeGroupVersion.String() {
		return true, fmt.Errorf("decode %s: %s %s is not a %s/%s", name, tm.APIVersion, tm.Kind, kubeletconfig.SchemeGroupVersion, kind)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return true, fmt.Errorf("decode %s: %w", name, err)
	}
	return true, nil
}

func removeRecord(dir, name string) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
