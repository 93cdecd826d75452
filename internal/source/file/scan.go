package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/source"
)

// fileState is what berth knows of one manifest file.
type fileState struct {
	data []byte  // content last read; nil after a read error
	pod  *v1.Pod // last good pod from this file; kept while the file is broken
	err  error   // why the current content gives no pod, or nil
	dup  error   // why pod is left out as a duplicate, or nil
	// refused: pod is listed although Options.Screen refused it (no
	// allowed version came before it); admission rejects it.
	refused bool
	read    bool // read once since berth started
}

// scanState is the Source's memory between scans. Only Run's goroutine uses
// it.
type scanState struct {
	files   map[string]*fileState
	pathErr error // why the manifest path itself could not be read, or nil
	missing bool  // the manifest path does not exist
	sent    []*v1.Pod
	ok      bool // a snapshot has been sent
}

// scan reads the manifest path and returns the pods it holds now, and
// whether they differ from the last snapshot sent. Files whose content did
// not change are not parsed again, so an error is logged once per change.
func (s *Source) scan(logger klog.Logger, st *scanState) ([]*v1.Pod, bool) {
	paths, missing, err := listManifests(logger, s.opts.Path)
	if err != nil {
		// Keep every pod: not being able to read the directory says nothing
		// about what it holds.
		if st.pathErr == nil || st.pathErr.Error() != err.Error() {
			logger.Error(err, "Could not read static pod path; keeping the pods read before", "path", s.opts.Path)
		}
		st.pathErr = err
		s.publishErrors(st)
		return nil, false
	}
	st.pathErr = nil
	if missing && !st.missing {
		logger.Info("Static pod path does not exist; no static pods until it does", "path", s.opts.Path)
	}
	st.missing = missing

	present := make(map[string]bool, len(paths))
	for _, p := range paths {
		present[p] = true
		f := st.files[p]
		if f == nil {
			f = &fileState{}
			st.files[p] = f
		}
		s.readFile(logger, p, f)
	}
	for p := range st.files {
		if !present[p] {
			delete(st.files, p)
			s.forgetAllowed(logger, p)
		}
	}
	if !st.ok {
		// Manifests removed while berth was down.
		s.pruneAllowed(logger, present)
	}

	// Two files may not define the same pod: the first by file name wins,
	// as the directory is read in that order.
	var pods []*v1.Pod
	names := map[string]string{}   // namespace/name -> path
	uids := map[types.UID]string{} // UID -> path
	for _, p := range paths {
		f, ok := st.files[p]
		if !ok || f.pod == nil {
			continue
		}
		key := f.pod.Namespace + "/" + f.pod.Name
		var dup error
		if other, ok := names[key]; ok {
			dup = fmt.Errorf("pod %s is already defined by %s; ignoring this file", key, other)
		} else if other, ok := uids[f.pod.UID]; ok {
			dup = fmt.Errorf("pod UID %s is already used by %s; ignoring this file", f.pod.UID, other)
		}
		if dup != nil {
			if f.dup == nil || f.dup.Error() != dup.Error() {
				logger.Error(dup, "Could not read static pod manifest; other pods are unaffected", "path", p)
			}
			f.dup = dup
			continue
		}
		f.dup = nil
		names[key] = p
		uids[f.pod.UID] = p
		pods = append(pods, f.pod)
	}
	s.publishErrors(st)

	if st.ok && samePods(st.sent, pods) {
		return pods, false
	}
	if pods == nil {
		pods = []*v1.Pod{}
	}
	st.sent, st.ok = pods, true
	return pods, true
}

// readFile reads and, if its content changed, parses one manifest.
func (s *Source) readFile(logger klog.Logger, path string, f *fileState) {
	data, err := readManifest(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Removed since the directory was listed: the next scan drops it.
			return
		}
		if f.err == nil || f.err.Error() != err.Error() {
			logger.Error(err, "Could not read static pod manifest; other pods are unaffected", "path", path)
		}
		f.data, f.err = nil, err
		return
	}
	if f.data != nil && bytes.Equal(data, f.data) {
		return
	}
	if !f.read {
		// First read since berth started: the version allowed before the
		// restart, if any, is the last pod.
		f.read = true
		f.pod = s.loadAllowed(logger, path)
	}
	f.data = data
	pod, err := s.parser.parse(data, path, s.opts.NodeName)
	if err != nil {
		logger.Error(err, "Could not read static pod manifest; other pods are unaffected", "path", path)
	}
	var refusal error
	if err == nil && s.opts.Screen != nil {
		refusal = s.opts.Screen(pod)
	}
	c := choosePod(f.pod, f.refused, pod, err, refusal)
	f.err, f.refused = c.err, c.refused
	if refusal != nil && s.opts.OnRefused != nil {
		var kept *v1.Pod
		if c.pod != pod {
			kept = c.pod
		}
		s.opts.OnRefused(path, pod, kept, refusal)
	}
	if pod == nil || c.pod != pod {
		return // the last pod stays
	}
	if !c.refused {
		s.storeAllowed(logger, path, data)
	}
	if old := f.pod; old != nil && old.UID == pod.UID {
		// Same pod: keep when it was first seen, and the very same object if
		// nothing else changed, so that no snapshot is sent for it.
		pod.Annotations[source.AnnotationConfigSeen] = old.Annotations[source.AnnotationConfigSeen]
		if equality.Semantic.DeepEqual(old, pod) {
			return
		}
	} else {
		pod.Annotations[source.AnnotationConfigSeen] = s.opts.Now().Format(source.SeenTimeLayout)
	}
	f.pod = pod
}

// publishErrors makes the current errors visible to Errors.
func (s *Source) publishErrors(st *scanState) {
	errs := map[string]error{}
	if st.pathErr != nil {
		errs[s.opts.Path] = st.pathErr
	}
	for p, f := range st.files {
		switch {
		case f.err != nil:
			errs[p] = f.err
		case f.dup != nil:
			errs[p] = f.dup
		}
	}
	s.mu.Lock()
	s.errs = errs
	s.mu.Unlock()
}

// listManifests returns the manifest files under path, sorted: path itself
// if it is a file, else the regular files in it (following symlinks),
// leaving out hidden files and sub-directories as upstream does. missing
// says that path does not exist, which is no error: it holds no pods.
func listManifests(logger klog.Logger, path string) (paths []string, missing bool, err error) {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if info.Mode().IsRegular() {
		return []string{path}, false, nil
	}
	if !info.IsDir() {
		return nil, false, fmt.Errorf("%s is neither a directory nor a regular file", path)
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, false, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(path, e.Name())
		info, err := os.Stat(p)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				logger.V(2).Info("Skipping static pod path entry", "path", p, "err", err)
			}
			continue
		}
		if !info.Mode().IsRegular() {
			logger.V(4).Info("Skipping static pod path entry that is not a regular file", "path", p)
			continue
		}
		paths = append(paths, p)
	}
	return paths, false, nil
}

func readManifest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("manifest is larger than %d bytes", maxManifestSize)
	}
	return data, nil
}

func samePods(a, b []*v1.Pod) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
