package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
)

// The tests below reach berth's kubelet API two ways: through the
// apiserver (pods/log, pods/exec, ... as kubectl does) and directly on its
// port, as the apiserver, metrics-server and Prometheus do.

// --- credentials ---

// adminConfig is the admin's client configuration for the apiserver.
func (env *environment) adminConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(env.stateDir, "admin.kubeconfig"))
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	return cfg
}

// pkiPair returns the certificate and key files pki/<stem>.{crt,key}.
func (env *environment) pkiPair(stem string) (string, string) {
	return filepath.Join(env.stateDir, "pki", stem+".crt"), filepath.Join(env.stateDir, "pki", stem+".key")
}

// kubeletPort is the port berth reports in its Node's daemon endpoints.
func (env *environment) kubeletPort(t *testing.T) int32 {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	node, err := env.kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 {
		t.Fatalf("node %s reports no kubelet port", nodeName)
	}
	return port
}

// credentials is how a client authenticates to berth: a client
// certificate, a bearer token, or nothing.
type credentials struct {
	certFile, keyFile string
	token             string
}

// kubeletConfig is a client configuration for berth's API on port with
// creds. Like `curl -k`, it does not verify berth's self-signed serving
// certificate.
func kubeletConfig(port int32, creds credentials) *rest.Config {
	return &rest.Config{
		Host:        fmt.Sprintf("https://127.0.0.1:%d", port),
		BearerToken: creds.token,
		TLSClientConfig: rest.TLSClientConfig{
			Insecure: true,
			CertFile: creds.certFile,
			KeyFile:  creds.keyFile,
		},
		Timeout: 15 * time.Second,
	}
}

// kubeletRequest sends method path to berth with creds and returns the status
// code and body.
func kubeletRequest(method string, port int32, creds credentials, path string) (int, []byte, error) {
	cfg := kubeletConfig(port, creds)
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, cfg.Host+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// kubeletGet is kubeletRequest GET that fails t unless berth answers 200.
func kubeletGet(t *testing.T, port int32, creds credentials, path string) []byte {
	t.Helper()
	code, body, err := kubeletRequest(http.MethodGet, port, creds, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, truncate(body, 500))
	}
	return body
}

// serviceAccountToken creates ServiceAccount name in ns, binds it to
// clusterRole (none when empty) and returns a token for it. With a role,
// it waits until the apiserver's authorizer allows the SA verb on
// nodes/subresource, so that berth's first SubjectAccessReview (whose
// answer it caches) cannot race the binding.
func (env *environment) serviceAccountToken(t *testing.T, ns, name, clusterRole, verb, subresource string) string {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount %s/%s: %v", ns, name, err)
	}
	user := fmt.Sprintf("system:serviceaccount:%s:%s", ns, name)
	if clusterRole != "" {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
		}
		if _, err := env.kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRoleBinding %s: %v", crb.Name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := apiContext()
			defer cancel()
			if err := env.kube.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete ClusterRoleBinding %s: %v", crb.Name, err)
			}
		})
		env.eventually(t, 20*time.Second, func() (bool, string) {
			ctx, cancel := apiContext()
			defer cancel()
			sar, err := env.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{
					User:   user,
					Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Verb: verb, Resource: "nodes", Subresource: subresource, Name: nodeName,
					},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				return false, err.Error()
			}
			return sar.Status.Allowed, fmt.Sprintf("%s may not %s nodes/%s yet: %s", user, verb, subresource, sar.Status.Reason)
		})
	}
	tr, err := env.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", user, err)
	}
	return tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

// --- pods/log ---

// podLogs is `kubectl logs` through the apiserver.
func (env *environment) podLogs(ns, pod string, opts *v1.PodLogOptions) (string, error) {
	ctx, cancel := apiContext()
	defer cancel()
	body, err := env.kube.CoreV1().Pods(ns).GetLogs(pod, opts).DoRaw(ctx)
	if err != nil {
		return string(body), fmt.Errorf("logs of %s/%s (%+v): %w", ns, pod, *opts, err)
	}
	return string(body), nil
}

// lines splits s into its lines, without the last newline's empty rest.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// --- exec, attach, port-forward ---

// streamProtocol is how a client upgrades a streaming request.
type streamProtocol string

const (
	spdyProtocol      streamProtocol = "SPDY"
	websocketProtocol streamProtocol = "WebSocket"
)

// executor builds a remotecommand executor for u with protocol: SPDY with
// POST, or WebSocket (v5) with GET, as kubectl does.
func executor(cfg *rest.Config, protocol streamProtocol, u *url.URL) (remotecommand.Executor, error) {
	if protocol == websocketProtocol {
		return remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, u.String())
	}
	return remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
}

// streamResult is what a remote command wrote and how it ended.
type streamResult struct {
	stdout, stderr string
	err            error
}

// exitCode is the remote command's exit code: 0 when it succeeded, -1
// when the stream failed for another reason.
func (r streamResult) exitCode() int {
	if r.err == nil {
		return 0
	}
	var ee utilexec.ExitError
	if errors.As(r.err, &ee) {
		return ee.ExitStatus()
	}
	return -1
}

// stream runs ex with stdin (none when nil) and waits up to timeout.
func stream(ex remotecommand.Executor, stdin io.Reader, tty bool, timeout time.Duration) streamResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	opts := remotecommand.StreamOptions{Stdin: stdin, Stdout: &stdout, Tty: tty}
	if !tty {
		opts.Stderr = &stderr
	}
	err := ex.StreamWithContext(ctx, opts)
	return streamResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// apiExecURL is the apiserver's pods/exec URL for cmd in container.
func (env *environment) apiExecURL(ns, pod, container string, stdin, tty bool, cmd ...string) *url.URL {
	return env.kube.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("exec").
		VersionedParams(&v1.PodExecOptions{
			Container: container, Command: cmd, Stdin: stdin, Stdout: true, Stderr: !tty, TTY: tty,
		}, scheme.ParameterCodec).URL()
}

// apiAttachURL is the apiserver's pods/attach URL for container.
func (env *environment) apiAttachURL(ns, pod, container string, tty bool) *url.URL {
	return env.kube.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource("attach").
		VersionedParams(&v1.PodAttachOptions{
			Container: container, Stdin: true, Stdout: true, Stderr: !tty, TTY: tty,
		}, scheme.ParameterCodec).URL()
}

// kubeletExecURL is berth's own /exec URL, with the query parameters the
// apiserver sends.
func kubeletExecURL(port int32, ns, pod, container string, stdin, tty bool, cmd ...string) *url.URL {
	q := url.Values{}
	for _, c := range cmd {
		q.Add("command", c)
	}
	flag := func(name string, on bool) {
		if on {
			q.Set(name, "1")
		}
	}
	flag("input", stdin)
	q.Set("output", "1")
	flag("error", !tty)
	flag("tty", tty)
	return &url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", port), Path: fmt.Sprintf("/exec/%s/%s/%s", ns, pod, container), RawQuery: q.Encode()}
}

// watchWriter collects what is written to it and closes found once it
// holds want.
type watchWriter struct {
	want  string
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan struct{}
	once  sync.Once
}

func newWatchWriter(want string) *watchWriter {
	return &watchWriter{want: want, found: make(chan struct{})}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.found) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// interact runs ex with a live stdin, types input, and waits until the
// output holds want. Then it types then and waits for the remote command
// to end, returning how it ended as streamErr; with then empty it
// detaches instead. err tells what went wrong on the way: want did not
// come within timeout, the stream ended first, or did not end.
func interact(ex remotecommand.Executor, tty bool, input, want, then string, timeout time.Duration) (out string, streamErr, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	output := newWatchWriter(want)
	done := make(chan error, 1)
	go func() {
		opts := remotecommand.StreamOptions{Stdin: stdinR, Stdout: output, Tty: tty}
		if !tty {
			opts.Stderr = output
		}
		done <- ex.StreamWithContext(ctx, opts)
	}()
	go func() { _, _ = io.WriteString(stdinW, input) }()
	select {
	case <-output.found:
	case err := <-done:
		return output.String(), err, fmt.Errorf("stream ended before %q came", want)
	case <-ctx.Done():
		return output.String(), nil, fmt.Errorf("no %q within %s", want, timeout)
	}
	if then == "" {
		cancel() // detach
	} else {
		go func() { _, _ = io.WriteString(stdinW, then) }()
	}
	select {
	case streamErr = <-done:
		if then == "" {
			streamErr = nil // the cancellation's
		}
		return output.String(), streamErr, nil
	case <-time.After(10 * time.Second):
		return output.String(), nil, errors.New("the stream did not end within 10 s")
	}
}

// forward is a running port-forward to one port of a pod.
type forward struct {
	local  uint16
	stop   chan struct{}
	done   chan error
	errOut *bytes.Buffer
}

// portForward forwards a free local port to remotePort through u with
// protocol (SPDY, or SPDY tunneled over WebSocket as current kubectl does).
func portForward(cfg *rest.Config, protocol streamProtocol, u *url.URL, remotePort int) (*forward, error) {
	var fw *portforward.PortForwarder
	stop, ready := make(chan struct{}), make(chan struct{})
	errOut := &bytes.Buffer{}
	var err error
	ports := []string{fmt.Sprintf("0:%d", remotePort)}
	if protocol == websocketProtocol {
		d, derr := portforward.NewSPDYOverWebsocketDialer(u, cfg)
		if derr != nil {
			return nil, derr
		}
		fw, err = portforward.NewOnAddresses(d, []string{"127.0.0.1"}, ports, stop, ready, io.Discard, errOut)
	} else {
		tr, upgrader, derr := spdy.RoundTripperFor(cfg)
		if derr != nil {
			return nil, derr
		}
		d := spdy.NewDialer(upgrader, &http.Client{Transport: tr}, http.MethodPost, u)
		fw, err = portforward.NewOnAddresses(d, []string{"127.0.0.1"}, ports, stop, ready, io.Discard, errOut)
	}
	if err != nil {
		return nil, err
	}
	f := &forward{stop: stop, done: make(chan error, 1), errOut: errOut}
	go func() { f.done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-f.done:
		return nil, fmt.Errorf("port-forward ended before it was ready: %v (%s)", err, errOut)
	case <-time.After(15 * time.Second):
		close(stop)
		return nil, errors.New("port-forward not ready within 15 s")
	}
	got, err := fw.GetPorts()
	if err != nil || len(got) != 1 {
		f.close()
		return nil, fmt.Errorf("forwarded ports %v: %v", got, err)
	}
	f.local = got[0].Local
	return f, nil
}

// close stops the forward and waits for it.
func (f *forward) close() error {
	close(f.stop)
	select {
	case err := <-f.done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("port-forward did not stop within 10 s")
	}
}

// httpGet fetches url and returns the status code and body.
func httpGet(u string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	// A fresh connection each time: each one is a new stream to the pod.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// --- kubectl ---

// kubectl runs the cluster's kubectl with the admin kubeconfig and returns
// stdout, stderr and its exit code.
func (env *environment) kubectl(stdin string, timeout time.Duration, args ...string) (string, string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bin := filepath.Join(env.repo, "_output", "cluster", "bin", "kubectl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", filepath.Join(env.stateDir, "admin.kubeconfig")}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), stderr.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return stdout.String(), stderr.String(), -1, fmt.Errorf("kubectl %v: %w", args, err)
	}
	return stdout.String(), stderr.String(), 0, nil
}

// kubectlPortForward runs `kubectl port-forward pod/<pod> :remote` and
// returns the local port and a function that stops kubectl.
func (env *environment) kubectlPortForward(ns, pod string, remote int) (int, func(), error) {
	bin := filepath.Join(env.repo, "_output", "cluster", "bin", "kubectl")
	cmd := exec.Command(bin, "--kubeconfig", filepath.Join(env.stateDir, "admin.kubeconfig"),
		"port-forward", "-n", ns, "--address", "127.0.0.1", "pod/"+pod, fmt.Sprintf(":%d", remote))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	// "Forwarding from 127.0.0.1:40123 -> 8080"
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> `)
	portc := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				p, _ := strconv.Atoi(m[1])
				portc <- p
			}
		}
		close(portc)
	}()
	select {
	case p, ok := <-portc:
		if ok {
			return p, stop, nil
		}
		stop()
		return 0, nil, fmt.Errorf("kubectl port-forward ended: %s", stderr.String())
	case <-time.After(15 * time.Second):
		stop()
		return 0, nil, fmt.Errorf("kubectl port-forward printed no port within 15 s: %s", stderr.String())
	}
}

// --- berth's configuration ---

// restartBerthWith restarts berth with extra KubeletConfiguration lines
// appended to the suite's and extra flags, and restores the suite's berth
// when t ends.
func (env *environment) restartBerthWith(t *testing.T, extraConfig string, extraArgs ...string) {
	t.Helper()
	env.replaceBerth(t, (*berth).start, extraConfig, extraArgs...)
}

// replaceBerth stops berth and starts it again with start, extra
// configuration and flags; when t ends, the suite's berth is restored.
func (env *environment) replaceBerth(t *testing.T, start func(*berth) error, extraConfig string, extraArgs ...string) {
	t.Helper()
	b := env.berth
	configPath := filepath.Join(env.nodeDir, "kubelet-config.yaml")
	orig, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	origArgs := slices.Clone(b.args)
	b.mu.Unlock()
	restart := func(config []byte, args []string, start func(*berth) error) error {
		if err := b.stop(); err != nil {
			return err
		}
		if err := os.WriteFile(configPath, config, 0o644); err != nil {
			return err
		}
		b.mu.Lock()
		b.args = args
		b.mu.Unlock()
		return start(b)
	}
	t.Cleanup(func() {
		if err := restart(orig, origArgs, (*berth).start); err != nil {
			t.Errorf("restart berth with the suite's configuration: %v", err)
			return
		}
		if _, err := env.poll(60*time.Second, env.nodeReady); err != nil {
			t.Errorf("node %s not Ready after berth's restart: %v", nodeName, err)
		}
	})
	config := append(slices.Clone(orig), []byte(extraConfig)...)
	if err := restart(config, append(slices.Clone(origArgs), extraArgs...), start); err != nil {
		t.Fatalf("restart berth with %q %v: %v", extraConfig, extraArgs, err)
	}
}

// --- Prometheus ---

// parseMetrics parses the Prometheus text format.
func parseMetrics(body []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(body))
}

// sample finds the sample of family name whose labels include want and
// returns its value (a counter's, gauge's or untyped value; a histogram's
// count).
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// sumSamples adds up every sample of family name (histograms: counts).
func sumSamples(families map[string]*dto.MetricFamily, name string) (float64, int) {
	f := families[name]
	if f == nil {
		return 0, 0
	}
	total := 0.0
	for _, m := range f.Metric {
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total, len(f.Metric)
}

// --- cgroups ---

// podCgroup is the pod's cgroup (cgroupfs driver) below a v1 hierarchy's
// mount: /kubepods[/burstable|/besteffort]/pod<uid>.
func podCgroup(p *v1.Pod) string {
	switch p.Status.QOSClass {
	case v1.PodQOSBurstable:
		return "/kubepods/burstable/pod" + string(p.UID)
	case v1.PodQOSBestEffort:
		return "/kubepods/besteffort/pod" + string(p.UID)
	}
	return "/kubepods/pod" + string(p.UID)
}

// readUint reads a cgroup file holding one number.
func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
}

// cgroupWorkingSet is cAdvisor's working set of a v1 memory cgroup: usage
// less inactive file pages.
func cgroupWorkingSet(dir string) (uint64, error) {
	usage, err := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return 0, err
	}
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return 0, err
	}
	var inactive uint64
	for _, l := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(l, "total_inactive_file "); ok {
			inactive, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if inactive > usage {
		return 0, nil
	}
	return usage - inactive, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
