package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/logs"
)

// containerLogs serves /containerLogs/{ns}/{pod}/{container}: the
// container's log, rotated files included, with the query parameters of
// v1.PodLogOptions (follow, previous, tailLines, sinceSeconds, sinceTime,
// timestamps, limitBytes, stream).
type containerLogs struct {
	pods    PodLister
	runtime RuntimePods
	clock   clock.Clock
}

func (c *containerLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ns, podName, name := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	q, code, err := parseLogQuery(r.URL.Query(), c.clock.Now())
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	pod := findPod(c.pods, ns, podName)
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %q does not exist", podName), http.StatusNotFound)
		return
	}
	if !hasContainer(pod, name) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", name, podName), http.StatusNotFound)
		return
	}
	ctx := r.Context()
	cs, err := c.logContainer(ctx, pod, name, q.previous)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if q.opts.Follow {
		q.opts.Running = func(ctx context.Context) (bool, error) {
			st, err := c.runtime.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
			if err != nil {
				return false, err
			}
			for _, ct := range st.Containers {
				if ct.ID == cs.ID {
					return ct.State == container.StateRunning, nil
				}
			}
			return false, nil // removed: it writes no more
		}
		q.opts.Clock = c.clock
	}
	out := &flushWriter{w: w, rc: http.NewResponseController(w)}
	var stdout, stderr io.Writer = out, out
	switch q.stream {
	case v1.LogStreamStdout:
		stderr = nil
	case v1.LogStreamStderr:
		stdout = nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	err = logs.Read(ctx, cs.LogPath, q.opts, stdout, stderr)
	switch {
	case err == nil:
		if !out.wrote {
			w.WriteHeader(http.StatusOK)
		}
	case !out.wrote:
		http.Error(w, err.Error(), http.StatusBadRequest)
	case ctx.Err() == nil:
		// Too late for a status code: the client sees the log end early.
		klog.FromContext(ctx).Error(err, "Reading container log failed", "pod", klog.KObj(pod), "container", name)
	}
}

// logContainer picks the container whose log to serve, as upstream's
// validateContainerLogStatus does from the pod's status, and finds its log
// file through the runtime.
func (c *containerLogs) logContainer(ctx context.Context, pod *v1.Pod, name string, previous bool) (*container.ContainerStatus, error) {
	st, err := c.runtime.GetPodStatus(ctx, pod.UID, pod.Name, pod.Namespace)
	if err != nil {
		return nil, fmt.Errorf("container %q in pod %q: %w", name, pod.Name, err)
	}
	id, err := statusContainerID(pod, name, previous)
	if errors.Is(err, errNoStatus) {
		// No status yet (berth just started the pod or restarted): the
		// runtime's newest container, or the one before, by that name.
		n := 0
		if previous {
			n = 1
		}
		if all := st.ContainersNamed(name); len(all) > n {
			return withLogPath(all[n], pod, name)
		}
		if previous {
			return nil, fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		}
		return nil, fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
	}
	if err != nil {
		return nil, err
	}
	for _, ct := range st.Containers {
		if ct.ID == id {
			return withLogPath(ct, pod, name)
		}
	}
	return nil, fmt.Errorf("container %q in pod %q: container %s is gone and so is its log", name, pod.Name, id)
}

func withLogPath(ct *container.ContainerStatus, pod *v1.Pod, name string) (*container.ContainerStatus, error) {
	if ct.LogPath == "" {
		return nil, fmt.Errorf("container %q in pod %q has no log file", name, pod.Name)
	}
	return ct, nil
}

var errNoStatus = errors.New("no container status")

// statusContainerID is upstream's validateContainerLogStatus: the runtime
// ID of the container whose log to show, from the pod's status.
func statusContainerID(pod *v1.Pod, name string, previous bool) (string, error) {
	var cs *v1.ContainerStatus
	for _, list := range [][]v1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				cs = &list[i]
			}
		}
	}
	if cs == nil {
		return "", errNoStatus
	}
	last := cs.LastTerminationState.Terminated
	waiting, running, terminated := cs.State.Waiting, cs.State.Running, cs.State.Terminated
	var id string
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod.Name)
		}
		id = last.ContainerID
	case running != nil:
		id = cs.ContainerID
	case terminated != nil:
		id = terminated.ContainerID
		if id == "" && last != nil {
			id = last.ContainerID
		}
		if id == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
		}
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", name, pod.Name)
		}
		id = last.ContainerID
	case waiting != nil:
		switch waiting.Reason {
		case "ErrImagePull":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", name, pod.Name)
		case "ImagePullBackOff":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", name, pod.Name)
		default:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: %v", name, pod.Name, waiting.Reason)
		}
	default:
		return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
	}
	// "containerd://<id>": the runtime knows the container by <id>.
	if _, bare, ok := strings.Cut(id, "://"); ok {
		id = bare
	}
	return id, nil
}

// hasContainer reports whether the pod's spec has a container by that name.
func hasContainer(pod *v1.Pod, name string) bool { return container.FindContainer(pod, name) != nil }

// logQuery is a parsed /containerLogs query.
type logQuery struct {
	opts     logs.ReadOptions
	previous bool
	stream   string
}

// parseLogQuery decodes and validates the query as the API server's
// parameter codec and ValidatePodLogOptions would; the status code says
// whether the query was unreadable (400) or invalid (422).
func parseLogQuery(q url.Values, now time.Time) (logQuery, int, error) {
	var out logQuery
	bad := func() (logQuery, int, error) {
		return logQuery{}, http.StatusBadRequest, errors.New(`{"message": "Unable to decode query."}`)
	}
	invalid := func() (logQuery, int, error) {
		return logQuery{}, http.StatusUnprocessableEntity, errors.New(`{"message": "Invalid request."}`)
	}
	// "tail" is the old name of tailLines; "all" means no limit.
	if tail := q.Get("tail"); tail != "" {
		q = cloneValues(q)
		q.Del("tailLines")
		if tail != "all" {
			q.Set("tailLines", tail)
		}
	}
	out.opts.Follow = queryBool(q, "follow")
	out.previous = queryBool(q, "previous")
	out.opts.Timestamps = queryBool(q, "timestamps")
	var sinceSeconds, tailLines, limitBytes *int64
	for key, dst := range map[string]**int64{"sinceSeconds": &sinceSeconds, "tailLines": &tailLines, "limitBytes": &limitBytes} {
		if v, ok := q[key]; ok && len(v) > 0 {
			n, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				return bad()
			}
			*dst = &n
		}
	}
	var sinceTime *time.Time
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return bad()
		}
		sinceTime = &t
	}
	switch {
	case tailLines != nil && *tailLines < 0,
		limitBytes != nil && *limitBytes < 1,
		sinceSeconds != nil && sinceTime != nil,
		sinceSeconds != nil && *sinceSeconds < 1:
		return invalid()
	}
	out.stream = v1.LogStreamAll
	if s := q.Get("stream"); s != "" {
		out.stream = s
		switch out.stream {
		case v1.LogStreamAll:
		case v1.LogStreamStdout, v1.LogStreamStderr:
			if tailLines != nil {
				return invalid() // upstream: not together, for now
			}
		default:
			return invalid()
		}
	}
	if sinceSeconds != nil {
		out.opts.Since = now.Add(-time.Duration(*sinceSeconds) * time.Second)
	}
	if sinceTime != nil {
		out.opts.Since = *sinceTime
	}
	out.opts.TailLines = tailLines
	out.opts.LimitBytes = limitBytes
	return out, 0, nil
}

// queryBool reads a boolean parameter as the API server does: absent,
// "false" and "0" are false, anything else (even empty) is true.
func queryBool(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return false
	}
	return v[0] != "0" && !strings.EqualFold(v[0], "false")
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// flushWriter sends each write to the client at once, so that a followed
// log arrives as it is written.
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}
