package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// These tests cover berth's kubelet API (issue 4): container logs, exec,
// attach and port-forward through the apiserver as kubectl uses them and
// directly on berth's port; authentication and authorization there; the
// Summary API and the metrics endpoints; log rotation.

// counterScript prints "line 1" to "line 100" at once, then one more line
// every half second; SIGTERM makes it print "bye" and exit 7.
const counterScript = `trap 'echo bye; exit 7' TERM
i=0
while [ $i -lt 100 ]; do i=$((i+1)); echo "line $i"; done
while true; do i=$((i+1)); echo "line $i"; sleep 0.5; done`

// idleScript waits, and exits at once on SIGTERM.
const idleScript = `trap 'exit 0' TERM; while true; do sleep 1; done`

// numbered parses "line N" (after an optional prefix such as a timestamp)
// and returns N, -1 if l is not such a line.
func numbered(l string) int {
	i := strings.LastIndex(l, "line ")
	if i < 0 {
		return -1
	}
	f := strings.Fields(l[i+len("line "):])
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return -1
	}
	return n
}

// consecutive checks that ls are "line N", "line N+1", ... and returns
// the first and last N.
func consecutive(ls []string) (first, last int, err error) {
	if len(ls) == 0 {
		return 0, 0, fmt.Errorf("no lines")
	}
	first = numbered(ls[0])
	for i, l := range ls {
		if n := numbered(l); n != first+i || first < 0 {
			return first, 0, fmt.Errorf("line %d is %q, want number %d", i, l, first+i)
		}
	}
	return first, first + len(ls) - 1, nil
}

func TestLogs(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	start := time.Now()
	env.createPod(t, ns, shellPod("counter", counterScript, onNode()))
	pods, _ := env.waitReady(t, ns, "counter", 1, 30*time.Second)
	pod := pods[0]

	// Plain: everything so far, in order. Wait for a few slow lines, so
	// that sinceSeconds below can tell the burst from the rest.
	var all []string
	env.eventually(t, 20*time.Second, func() (bool, string) {
		out, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{})
		if err != nil {
			return false, err.Error()
		}
		all = lines(out)
		return len(all) >= 110, fmt.Sprintf("%d lines so far", len(all))
	})
	if first, _, err := consecutive(all); err != nil || first != 1 {
		t.Fatalf("plain logs: %v (first %d)", err, first)
	}
	t.Logf("pod created -> 110 lines through pods/log: %s", since(start))

	t.Run("tailLines", func(t *testing.T) {
		out, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{TailLines: ptrTo(int64(3))})
		if err != nil {
			t.Fatal(err)
		}
		ls := lines(out)
		_, last, err := consecutive(ls)
		if err != nil || len(ls) != 3 || last < len(all) {
			t.Errorf("tailLines=3: %q (%v); want 3 consecutive lines ending at %d or later", ls, err, len(all))
		}
	})

	t.Run("timestamps", func(t *testing.T) {
		out, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{Timestamps: true, TailLines: ptrTo(int64(5))})
		if err != nil {
			t.Fatal(err)
		}
		ls := lines(out)
		if _, _, err := consecutive(ls); err != nil || len(ls) != 5 {
			t.Fatalf("timestamps: %q: %v", ls, err)
		}
		var prev time.Time
		for _, l := range ls {
			ts, _, _ := strings.Cut(l, " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || at.Before(start.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) || at.Before(prev) {
				t.Errorf("timestamps: line %q: time %v (%v); want RFC 3339 times since the pod started, in order", l, at, err)
			}
			prev = at
		}
	})

	t.Run("sinceSeconds", func(t *testing.T) {
		out, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{SinceSeconds: ptrTo(int64(2))})
		if err != nil {
			t.Fatal(err)
		}
		ls := lines(out)
		first, _, err := consecutive(ls)
		// A line every 0.5 s: about 4 in 2 s, none of the first burst.
		if err != nil || len(ls) < 1 || len(ls) > 8 || first <= 100 {
			t.Errorf("sinceSeconds=2: %q (%v); want 1 to 8 consecutive lines after line 100", ls, err)
		}
	})

	t.Run("limitBytes", func(t *testing.T) {
		out, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{LimitBytes: ptrTo(int64(20))})
		if err != nil {
			t.Fatal(err)
		}
		if want := "line 1\nline 2\nline 3"; out != want {
			t.Errorf("limitBytes=20: %q, want %q", out, want)
		}
	})

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		rc, err := env.kube.CoreV1().Pods(ns).GetLogs(pod.Name, &v1.PodLogOptions{Follow: true, TailLines: ptrTo(int64(1))}).Stream(ctx)
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
		defer rc.Close()
		began := time.Now()
		sc := bufio.NewScanner(rc)
		var got []string
		for len(got) < 4 && sc.Scan() {
			got = append(got, sc.Text())
		}
		took := time.Since(began)
		if _, _, err := consecutive(got); err != nil || len(got) != 4 {
			t.Fatalf("follow: %q (%v, scanner %v); want 4 consecutive lines", got, err, sc.Err())
		}
		// Three new lines come 0.5 s apart: they were followed, not read
		// from the file at once.
		if took < time.Second {
			t.Errorf("follow: 4 lines in %s; want the 3 after the tail to arrive as written (>= 1 s)", took)
		}
		cancel()
		ended := make(chan struct{})
		go func() {
			for sc.Scan() {
			}
			close(ended)
		}()
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Errorf("follow: the stream did not end within 5 s of cancelling")
		}
		t.Logf("follow: %q in %s", got, took.Round(time.Millisecond))
	})

	t.Run("kubectl", func(t *testing.T) {
		out, errOut, code, err := env.kubectl("", 20*time.Second, "logs", "-n", ns, pod.Name, "--tail=2")
		ls := lines(out)
		if _, _, cerr := consecutive(ls); err != nil || code != 0 || cerr != nil || len(ls) != 2 {
			t.Errorf("kubectl logs --tail=2: exit %d (%v) stdout %q stderr %q", code, err, out, errOut)
		}
	})

	// The container ends on SIGTERM; its restart makes the old log the
	// previous one.
	t.Run("previous", func(t *testing.T) {
		ids := containerIDs(pods)[pod.UID]
		if len(ids) != 1 {
			t.Fatalf("container IDs %v", ids)
		}
		if _, err := env.exec(ids[0], "kill", "1"); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		env.eventually(t, 40*time.Second, func() (bool, string) {
			p, err := env.getPod(ns, pod.Name)
			if err != nil || p == nil {
				return false, fmt.Sprintf("get pod: %v", err)
			}
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].RestartCount >= 1 && cs[0].State.Running != nil, describePod(p)
		})
		t.Logf("killed -> restarted: %s", since(restarted))
		prev, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{Previous: true})
		if err != nil {
			t.Fatal(err)
		}
		pl := lines(prev)
		if len(pl) < 111 || pl[len(pl)-1] != "bye" {
			t.Fatalf("previous: %d lines ending %q; want the first run's, ending with bye", len(pl), tail(pl, 3))
		}
		if _, _, err := consecutive(pl[:len(pl)-1]); err != nil || numbered(pl[0]) != 1 {
			t.Errorf("previous: %v", err)
		}
		cur, err := env.podLogs(ns, pod.Name, &v1.PodLogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cl := lines(cur)
		if first, _, err := consecutive(cl); err != nil || first != 1 {
			t.Errorf("current log after the restart: %v (first %d); want the new run's from line 1", err, first)
		}
	})
}

func tail(ls []string, n int) []string {
	if len(ls) > n {
		return ls[len(ls)-n:]
	}
	return ls
}

// streamRoute is where a streaming client connects: the apiserver (as
// kubectl does, the apiserver then proxying to berth) or berth's port
// directly (as the apiserver does).
type streamRoute struct {
	name string
	cfg  *rest.Config
}

func (env *environment) streamRoutes(t *testing.T) ([]streamRoute, int32) {
	port := env.kubeletPort(t)
	crt, key := env.pkiPair("admin")
	return []streamRoute{
		{"apiserver", env.adminConfig(t)},
		{"kubelet", kubeletConfig(port, credentials{certFile: crt, keyFile: key})},
	}, port
}

func TestExec(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	env.createPod(t, ns, shellPod("shell", idleScript, onNode()))
	env.waitReady(t, ns, "shell", 1, 30*time.Second)
	routes, port := env.streamRoutes(t)

	for _, route := range routes {
		for _, proto := range []streamProtocol{spdyProtocol, websocketProtocol} {
			t.Run(route.name+"/"+string(proto), func(t *testing.T) {
				execURL := func(stdin, tty bool, cmd ...string) *url.URL {
					if route.name == "apiserver" {
						return env.apiExecURL(ns, "shell", "main", stdin, tty, cmd...)
					}
					return kubeletExecURL(port, ns, "shell", "main", stdin, tty, cmd...)
				}
				run := func(stdin string, cmd ...string) streamResult {
					t.Helper()
					ex, err := executor(route.cfg, proto, execURL(stdin != "", false, cmd...))
					if err != nil {
						t.Fatal(err)
					}
					if stdin == "" {
						return stream(ex, nil, false, 20*time.Second)
					}
					return stream(ex, strings.NewReader(stdin), false, 20*time.Second)
				}
				began := time.Now()
				if r := run("", "echo", "ok"); r.err != nil || r.stdout != "ok\n" {
					t.Errorf("echo ok: stdout %q stderr %q err %v", r.stdout, r.stderr, r.err)
				}
				took := since(began)
				r := run("hello exec\n", "sh", "-c", "cat; echo to-stderr >&2; exit 3")
				if r.stdout != "hello exec\n" || r.stderr != "to-stderr\n" || r.exitCode() != 3 {
					t.Errorf("stdin to cat, exit 3: stdout %q stderr %q err %v (exit %d); want %q, %q, exit 3",
						r.stdout, r.stderr, r.err, r.exitCode(), "hello exec\n", "to-stderr\n")
				}
				// An interactive shell: type, read the answer, exit. (Typing
				// everything at once and closing stdin loses a tty's output
				// in containerd itself, CRI streaming server included.)
				ex, err := executor(route.cfg, proto, execURL(true, true, "sh"))
				if err != nil {
					t.Fatal(err)
				}
				out, streamErr, err := interact(ex, true, "echo $((6*7))\n", "42\r\n", "exit 4\n", 20*time.Second)
				if r := (streamResult{err: streamErr}); err != nil || r.exitCode() != 4 {
					t.Errorf("interactive shell with a tty: %v; ended with %v (exit %d), want exit 4; output %q", err, streamErr, r.exitCode(), out)
				}
				t.Logf("exec echo ok: %s", took)
			})
		}
	}

	// kubectl itself: WebSocket first, as current kubectl does.
	t.Run("kubectl", func(t *testing.T) {
		out, errOut, code, err := env.kubectl("", 20*time.Second, "exec", "-n", ns, "shell", "--", "echo", "ok")
		if err != nil || code != 0 || out != "ok\n" {
			t.Errorf("kubectl exec -- echo ok: exit %d (%v) stdout %q stderr %q", code, err, out, errOut)
		}
		out, errOut, code, err = env.kubectl("abc\n", 20*time.Second, "exec", "-i", "-n", ns, "shell", "--", "sh", "-c", "read x; echo got-$x; exit 5")
		if err != nil || code != 5 || out != "got-abc\n" {
			t.Errorf("kubectl exec -i (stdin abc, exit 5): exit %d (%v) stdout %q stderr %q", code, err, out, errOut)
		}
	})
}

func TestAttach(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	p := shellPod("attach", "", onNode(), withGrace(1))
	p.Spec.Containers = []v1.Container{
		{Name: "tty", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"sh"}, Stdin: true, TTY: true},
		{Name: "cat", Image: busybox, ImagePullPolicy: v1.PullNever, Command: []string{"cat"}, Stdin: true},
	}
	env.createPod(t, ns, p)
	env.waitReady(t, ns, "attach", 1, 30*time.Second)
	routes, port := env.streamRoutes(t)

	n := 0
	for _, route := range routes {
		for _, proto := range []streamProtocol{spdyProtocol, websocketProtocol} {
			t.Run(route.name+"/"+string(proto), func(t *testing.T) {
				attachURL := func(container string, tty bool) *url.URL {
					if route.name == "apiserver" {
						return env.apiAttachURL(ns, "attach", container, tty)
					}
					q := url.Values{"input": {"1"}, "output": {"1"}}
					if tty {
						q.Set("tty", "1")
					} else {
						q.Set("error", "1")
					}
					return &url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", port), Path: fmt.Sprintf("/attach/%s/attach/%s", ns, container), RawQuery: q.Encode()}
				}
				n++
				// The shell's echo of what is typed holds the expression,
				// its output the value: only the value proves the shell ran it.
				ex, err := executor(route.cfg, proto, attachURL("tty", true))
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("attached-%d", 40+n)
				began := time.Now()
				if out, _, err := interact(ex, true, fmt.Sprintf("echo attached-$((40+%d))\n", n), want, "", 20*time.Second); err != nil {
					t.Errorf("attach to the tty shell: %v; output %q", err, out)
				}
				took := since(began)

				ex, err = executor(route.cfg, proto, attachURL("cat", false))
				if err != nil {
					t.Fatal(err)
				}
				want = fmt.Sprintf("ping-%s-%s", route.name, proto)
				if out, _, err := interact(ex, false, want+"\n", want, "", 20*time.Second); err != nil {
					t.Errorf("attach to cat (stdin, no tty): %v; output %q", err, out)
				}
				t.Logf("attach, type, read the answer, detach: %s", took)
			})
		}
	}

	// Detaching leaves the containers running.
	pod, err := env.getPod(ns, "attach")
	if err != nil || pod == nil {
		t.Fatalf("get pod: %v", err)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.RestartCount != 0 || cs.State.Running == nil {
			t.Errorf("after the attaches: %s", describePod(pod))
			break
		}
	}
}

func TestPortForward(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	const page = "hello-from-berth\n"
	script := `mkdir -p /tmp/www && echo hello-from-berth >/tmp/www/index.html
trap 'exit 0' TERM
httpd -f -p 8080 -h /tmp/www &
wait`
	env.createPod(t, ns, shellPod("web", script, onNode()))
	env.waitReady(t, ns, "web", 1, 30*time.Second)
	routes, port := env.streamRoutes(t)

	fetch := func(t *testing.T, local int) {
		t.Helper()
		u := fmt.Sprintf("http://127.0.0.1:%d/index.html", local)
		// httpd may still be starting for the first forward; then each
		// fetch is a new connection, a new stream to the pod.
		for i := range 2 {
			var code int
			var body string
			var err error
			took := env.eventually(t, 10*time.Second, func() (bool, string) {
				code, body, err = httpGet(u)
				return err == nil && code == 200, fmt.Sprintf("GET %s: %d %q %v", u, code, body, err)
			})
			if body != page {
				t.Errorf("GET %s: %q, want %q", u, body, page)
			}
			if i == 0 {
				t.Logf("first fetch through the forward: %s", took.Round(time.Millisecond))
			}
		}
	}
	for _, route := range routes {
		for _, proto := range []streamProtocol{spdyProtocol, websocketProtocol} {
			t.Run(route.name+"/"+string(proto), func(t *testing.T) {
				u := env.kube.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name("web").SubResource("portforward").URL()
				if route.name == "kubelet" {
					u = &url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", port), Path: fmt.Sprintf("/portForward/%s/web", ns)}
				}
				f, err := portForward(route.cfg, proto, u, 8080)
				if err != nil {
					t.Fatal(err)
				}
				fetch(t, int(f.local))
				if err := f.close(); err != nil {
					t.Errorf("stop port-forward: %v (%s)", err, f.errOut)
				}
			})
		}
	}
	t.Run("kubectl", func(t *testing.T) {
		local, stop, err := env.kubectlPortForward(ns, "web", 8080)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		fetch(t, local)
	})
}

func TestKubeletAPIAuth(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	port := env.kubeletPort(t)
	adminCrt, adminKey := env.pkiPair("admin")
	admin := credentials{certFile: adminCrt, keyFile: adminKey}

	// The serving certificate names the node, as the apiserver dials it.
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to berth: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if err := leaf.VerifyHostname(nodeName); err != nil {
		t.Errorf("berth's serving certificate (DNS %v, IPs %v): %v", leaf.DNSNames, leaf.IPAddresses, err)
	}

	expect := func(t *testing.T, who string, creds credentials, method, path string, code int, body string) {
		t.Helper()
		got, b, err := kubeletRequest(method, port, creds, path)
		if err != nil {
			t.Errorf("%s %s %s: %v", who, method, path, err)
			return
		}
		if got != code || !strings.Contains(string(b), body) {
			t.Errorf("%s %s %s: %d %q; want %d with %q", who, method, path, got, truncate(b, 300), code, body)
		}
	}
	execPath := fmt.Sprintf("/exec/%s/x/main?command=true&output=1", ns)

	t.Run("anonymous", func(t *testing.T) {
		for _, path := range []string{"/pods", "/stats/summary", "/metrics", "/healthz"} {
			expect(t, "anonymous", credentials{}, http.MethodGet, path, http.StatusUnauthorized, "Unauthorized")
		}
		expect(t, "anonymous", credentials{}, http.MethodPost, execPath, http.StatusUnauthorized, "Unauthorized")
		expect(t, "bad token", credentials{token: "not-a-token"}, http.MethodGet, "/pods", http.StatusUnauthorized, "Unauthorized")
	})

	t.Run("client certificates", func(t *testing.T) {
		var pods v1.PodList
		if err := json.Unmarshal(kubeletGet(t, port, admin, "/pods"), &pods); err != nil || pods.Kind != "PodList" {
			t.Errorf("/pods as admin: kind %q: %v", pods.Kind, err)
		}
		var summary statsapi.Summary
		if err := json.Unmarshal(kubeletGet(t, port, admin, "/stats/summary"), &summary); err != nil || summary.Node.NodeName != nodeName {
			t.Errorf("/stats/summary as admin: node %q: %v", summary.Node.NodeName, err)
		}
		if _, err := parseMetrics(kubeletGet(t, port, admin, "/metrics")); err != nil {
			t.Errorf("/metrics as admin: %v", err)
		}
		// The apiserver's own client certificate, what kubectl logs/exec
		// reach berth with.
		crt, key := env.pkiPair("apiserver-kubelet-client")
		kubeletGet(t, port, credentials{certFile: crt, keyFile: key}, "/pods")
		// A certificate of another CA is nobody.
		expect(t, "self-signed client", credentials{certFile: filepath.Join(env.nodeDir, "root", "pki", "kubelet.crt"), keyFile: filepath.Join(env.nodeDir, "root", "pki", "kubelet.key")},
			http.MethodGet, "/pods", http.StatusUnauthorized, "Unauthorized")
	})

	t.Run("token without permission", func(t *testing.T) {
		token := env.serviceAccountToken(t, ns, "nobody", "", "", "")
		user := fmt.Sprintf("system:serviceaccount:%s:nobody", ns)
		nobody := credentials{token: token}
		expect(t, "nobody", nobody, http.MethodGet, "/pods", http.StatusForbidden,
			fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=[pods proxy])", user))
		expect(t, "nobody", nobody, http.MethodGet, "/stats/summary", http.StatusForbidden,
			fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=[stats])", user))
		expect(t, "nobody", nobody, http.MethodGet, "/metrics/resource", http.StatusForbidden,
			fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=[metrics])", user))
		expect(t, "nobody", nobody, http.MethodPost, execPath, http.StatusForbidden,
			fmt.Sprintf("Forbidden (user=%s, verb=create, resource=nodes, subresource(s)=[proxy])", user))
	})

	t.Run("token with nodes/stats", func(t *testing.T) {
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-stats-reader"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/stats"}, Verbs: []string{"get"}}},
		}
		ctx, cancel := apiContext()
		defer cancel()
		if _, err := env.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRole: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := apiContext()
			defer cancel()
			if err := env.kube.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete ClusterRole: %v", err)
			}
		})
		reader := credentials{token: env.serviceAccountToken(t, ns, "stats-reader", role.Name, "get", "stats")}
		user := fmt.Sprintf("system:serviceaccount:%s:stats-reader", ns)
		expect(t, "stats-reader", reader, http.MethodGet, "/stats/summary", http.StatusOK, `"nodeName"`)
		expect(t, "stats-reader", reader, http.MethodGet, "/pods", http.StatusForbidden,
			fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=[pods proxy])", user))
		expect(t, "stats-reader", reader, http.MethodGet, "/metrics", http.StatusForbidden, "subresource(s)=[metrics]")
		expect(t, "stats-reader", reader, http.MethodPost, execPath, http.StatusForbidden, "subresource(s)=[proxy]")
	})

	// metrics-server's permissions: upstream's system:kubelet-api-admin.
	t.Run("token with system:kubelet-api-admin", func(t *testing.T) {
		ms := credentials{token: env.serviceAccountToken(t, ns, "metrics-server", "system:kubelet-api-admin", "get", "metrics")}
		body := kubeletGet(t, port, ms, "/metrics/resource")
		families, err := parseMetrics(body)
		if err != nil {
			t.Fatalf("/metrics/resource: %v", err)
		}
		if _, ok := sample(families, "node_cpu_usage_seconds_total", nil); !ok {
			t.Errorf("/metrics/resource has no node_cpu_usage_seconds_total:\n%s", truncate(body, 2000))
		}
		kubeletGet(t, port, ms, "/stats/summary")
		kubeletGet(t, port, ms, "/pods")
	})
}

func TestKubeletAPIEndpoints(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	port := env.kubeletPort(t)
	crt, key := env.pkiPair("admin")
	admin := credentials{certFile: crt, keyFile: key}
	env.createPod(t, ns, shellPod("hello", "echo hello-direct; "+idleScript, onNode()))
	pods, _ := env.waitReady(t, ns, "hello", 1, 30*time.Second)

	// The plain healthz port: no TLS, no authentication.
	if body, err := env.berth.get(); err != nil || body != "ok" {
		t.Errorf("plain healthz %s: %q %v", env.berth.healthURL, body, err)
	}
	if body := kubeletGet(t, port, admin, "/healthz"); string(body) != "ok" {
		t.Errorf("/healthz on the kubelet API: %q", body)
	}

	var configz struct {
		KubeletConfig map[string]any `json:"kubeletconfig"`
	}
	body := kubeletGet(t, port, admin, "/configz")
	if err := json.Unmarshal(body, &configz); err != nil || configz.KubeletConfig["clusterDomain"] != "cluster.local" {
		t.Errorf("/configz: %v; want {\"kubeletconfig\": {... \"clusterDomain\": \"cluster.local\"}}, got %s", err, truncate(body, 500))
	}

	var list v1.PodList
	if err := json.Unmarshal(kubeletGet(t, port, admin, "/pods"), &list); err != nil {
		t.Fatalf("/pods: %v", err)
	}
	found := false
	for _, p := range list.Items {
		found = found || p.UID == pods[0].UID
	}
	if !found {
		t.Errorf("/pods lacks pod %s/hello (uid %s): %d pods", ns, pods[0].UID, len(list.Items))
	}
	if body := kubeletGet(t, port, admin, "/runningpods/"); !strings.Contains(string(body), string(pods[0].UID)) {
		t.Errorf("/runningpods/ lacks uid %s: %s", pods[0].UID, truncate(body, 500))
	}
	if body := kubeletGet(t, port, admin, fmt.Sprintf("/containerLogs/%s/hello/main?tailLines=1", ns)); string(body) != "hello-direct\n" {
		t.Errorf("/containerLogs: %q, want %q", body, "hello-direct\n")
	}
	code, out, err := kubeletRequest(http.MethodPost, port, admin, fmt.Sprintf("/run/%s/hello/main?cmd=echo+run-ok", ns))
	if err != nil || code != 200 || string(out) != "run-ok\n" {
		t.Errorf("/run echo run-ok: %d %q %v", code, out, err)
	}
}

func TestStats(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	port := env.kubeletPort(t)
	crt, key := env.pkiPair("admin")
	admin := credentials{certFile: crt, keyFile: key}
	start := time.Now()
	env.createPod(t, ns, shellPod("busy", `trap 'exit 0' TERM; while true; do :; done`, onNode(), withCPURequest("500m")))
	pods, _ := env.waitReady(t, ns, "busy", 1, 30*time.Second)
	pod := pods[0]
	cpuacct := filepath.Join("/sys/fs/cgroup/cpuacct", podCgroup(&pod), "cpuacct.usage")
	memDir := filepath.Join("/sys/fs/cgroup/memory", podCgroup(&pod))

	// The pod cgroup's CPU time as berth's samples are taken, to compare
	// with a sample of any time in between.
	type reading struct {
		at    time.Time
		usage uint64
	}
	var readings []reading
	var ps *statsapi.PodStats
	var summary statsapi.Summary
	took := env.eventually(t, 30*time.Second, func() (bool, string) {
		u, err := readUint(cpuacct)
		if err != nil {
			return false, err.Error()
		}
		readings = append(readings, reading{time.Now(), u})
		code, body, err := kubeletRequest(http.MethodGet, port, admin, "/stats/summary")
		if err != nil || code != 200 {
			return false, fmt.Sprintf("/stats/summary: %d %v %s", code, err, truncate(body, 300))
		}
		summary = statsapi.Summary{}
		if err := json.Unmarshal(body, &summary); err != nil {
			return false, err.Error()
		}
		ps = nil
		for i := range summary.Pods {
			if summary.Pods[i].PodRef.UID == string(pod.UID) {
				ps = &summary.Pods[i]
			}
		}
		if ps == nil || ps.CPU == nil || ps.CPU.UsageNanoCores == nil || ps.Memory == nil {
			return false, fmt.Sprintf("pod %s not in the summary yet, or without CPU rate", pod.UID)
		}
		sampled := ps.CPU.Time.Time
		return *ps.CPU.UsageNanoCores > 100e6 && sampled.After(readings[0].at),
			fmt.Sprintf("pod busy: usageNanoCores %d at %s", *ps.CPU.UsageNanoCores, sampled.Format(time.StampMilli))
	})
	t.Logf("busy pod created -> %dm CPU in the summary: %s (after Ready: %s)", *ps.CPU.UsageNanoCores/1e6, since(start), took.Round(time.Millisecond))

	// The node.
	n := summary.Node
	if n.CPU == nil || n.CPU.UsageNanoCores == nil || *n.CPU.UsageNanoCores == 0 || n.CPU.UsageCoreNanoSeconds == nil || *n.CPU.UsageCoreNanoSeconds == 0 {
		t.Errorf("node CPU: %+v; want non-zero usage", n.CPU)
	}
	if n.Memory == nil || n.Memory.WorkingSetBytes == nil || *n.Memory.WorkingSetBytes == 0 || n.Memory.UsageBytes == nil || *n.Memory.UsageBytes == 0 {
		t.Errorf("node memory: %+v; want non-zero usage and working set", n.Memory)
	}

	// The pod and its container.
	if ps.Memory.WorkingSetBytes == nil || *ps.Memory.WorkingSetBytes == 0 {
		t.Errorf("pod memory: %+v; want a working set", ps.Memory)
	}
	var cs *statsapi.ContainerStats
	for i := range ps.Containers {
		if ps.Containers[i].Name == "main" {
			cs = &ps.Containers[i]
		}
	}
	switch {
	case cs == nil:
		t.Errorf("pod stats list no container main: %+v", ps.Containers)
	case cs.CPU == nil || cs.CPU.UsageCoreNanoSeconds == nil || *cs.CPU.UsageCoreNanoSeconds == 0:
		t.Errorf("container main CPU: %+v", cs.CPU)
	case cs.Rootfs == nil || cs.Rootfs.UsedBytes == nil || cs.Logs == nil || cs.Logs.UsedBytes == nil:
		t.Errorf("container main: rootfs %+v logs %+v; want both with used bytes", cs.Rootfs, cs.Logs)
	}

	// Against the cgroup files: the cumulative CPU time at berth's sample
	// time, interpolated between our readings. The summary's times have
	// whole seconds (metav1.Time, as upstream), so the sample was taken
	// within a second after the time it shows.
	at := ps.CPU.Time.Time
	time.Sleep(time.Until(at.Add(1200 * time.Millisecond)))
	now, err := readUint(cpuacct)
	if err != nil {
		t.Fatal(err)
	}
	readings = append(readings, reading{time.Now(), now})
	cgroupAt := func(at time.Time) (float64, bool) {
		for i := 1; i < len(readings); i++ {
			a, b := readings[i-1], readings[i]
			if !at.Before(a.at) && !at.After(b.at) {
				frac := float64(at.Sub(a.at)) / float64(b.at.Sub(a.at))
				return float64(a.usage) + frac*float64(b.usage-a.usage), true
			}
		}
		return 0, false
	}
	lo, ok1 := cgroupAt(at)
	hi, ok2 := cgroupAt(at.Add(time.Second))
	got := float64(*ps.CPU.UsageCoreNanoSeconds)
	switch {
	case !ok1 || !ok2:
		t.Errorf("no cgroup readings around the summary's sample time %s (readings from %s to %s)", at.Format(time.StampMilli),
			readings[0].at.Format(time.StampMilli), readings[len(readings)-1].at.Format(time.StampMilli))
	case got < 0.9*lo || got > 1.1*hi:
		t.Errorf("pod CPU time sampled at %s: summary %.3fs, cgroup %.3fs to %.3fs in that second (%s): more than 10%% apart",
			at.Format(time.StampMilli), got/1e9, lo/1e9, hi/1e9, cpuacct)
	default:
		t.Logf("pod CPU time: summary %.3fs, cgroup %.3fs to %.3fs in the second of the sample", got/1e9, lo/1e9, hi/1e9)
	}
	ws, err := cgroupWorkingSet(memDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(*ps.Memory.WorkingSetBytes); math.Abs(got-float64(ws)) > 0.1*float64(ws) {
		t.Errorf("pod memory working set: summary %.0f, cgroup %d (%s): more than 10%% apart", got, ws, memDir)
	} else {
		t.Logf("pod memory working set: summary %.0f, cgroup %d", got, ws)
	}

	t.Run("metrics/resource", func(t *testing.T) {
		body := kubeletGet(t, port, admin, "/metrics/resource")
		families, err := parseMetrics(body)
		if err != nil {
			t.Fatalf("/metrics/resource does not parse: %v", err)
		}
		c := map[string]string{"namespace": ns, "pod": "busy", "container": "main"}
		p := map[string]string{"namespace": ns, "pod": "busy"}
		for _, m := range []struct {
			name   string
			labels map[string]string
		}{
			{"container_cpu_usage_seconds_total", c},
			{"container_memory_working_set_bytes", c},
			{"pod_cpu_usage_seconds_total", p},
			{"pod_memory_working_set_bytes", p},
			{"node_cpu_usage_seconds_total", nil},
			{"node_memory_working_set_bytes", nil},
		} {
			if v, ok := sample(families, m.name, m.labels); !ok || v <= 0 {
				t.Errorf("/metrics/resource %s%v = %v (present %v); want > 0", m.name, m.labels, v, ok)
			}
		}
	})

	t.Run("metrics/cadvisor", func(t *testing.T) {
		body := kubeletGet(t, port, admin, "/metrics/cadvisor")
		families, err := parseMetrics(body)
		if err != nil {
			t.Fatalf("/metrics/cadvisor does not parse: %v", err)
		}
		c := map[string]string{"namespace": ns, "pod": "busy", "container": "main"}
		for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss"} {
			if v, ok := sample(families, name, c); !ok || v <= 0 {
				t.Errorf("/metrics/cadvisor %s%v = %v (present %v); want > 0", name, c, v, ok)
			}
		}
		if _, ok := sample(families, "container_network_receive_bytes_total", map[string]string{"namespace": ns, "pod": "busy"}); !ok {
			t.Errorf("/metrics/cadvisor has no container_network_receive_bytes_total for pod %s/busy", ns)
		}
		fs := 0
		for name := range families {
			if strings.HasPrefix(name, "container_fs_") {
				fs++
			}
		}
		if fs == 0 {
			t.Errorf("/metrics/cadvisor has no container_fs_* family")
		}
	})
}

func TestMetrics(t *testing.T) {
	env := requireSuite(t)
	ns := env.namespace(t)
	port := env.kubeletPort(t)
	crt, key := env.pkiPair("admin")
	admin := credentials{certFile: crt, keyFile: key}
	env.createPod(t, ns, shellPod("idle", idleScript, onNode()))
	env.waitReady(t, ns, "idle", 1, 30*time.Second)

	var missing []string
	env.eventually(t, 15*time.Second, func() (bool, string) {
		code, body, err := kubeletRequest(http.MethodGet, port, admin, "/metrics")
		if err != nil || code != 200 {
			return false, fmt.Sprintf("/metrics: %d %v", code, err)
		}
		fams, err := parseMetrics(body)
		if err != nil {
			return false, fmt.Sprintf("/metrics does not parse: %v", err)
		}
		missing = nil
		check := func(name string, ok bool) {
			if !ok {
				missing = append(missing, name)
			}
		}
		v, _ := sumSamples(fams, "kubelet_running_pods")
		check("kubelet_running_pods >= 1", v >= 1)
		v, _ = sumSamples(fams, "kubelet_running_containers")
		check("kubelet_running_containers >= 1", v >= 1)
		v, _ = sumSamples(fams, "kubelet_runtime_operations_total")
		check("kubelet_runtime_operations_total > 0", v > 0)
		_, k := sumSamples(fams, "kubelet_runtime_operations_duration_seconds")
		check("kubelet_runtime_operations_duration_seconds", k > 0)
		v, _ = sumSamples(fams, "kubelet_pod_start_duration_seconds")
		check("kubelet_pod_start_duration_seconds_count > 0", v > 0)
		_, k = sumSamples(fams, "kubelet_pod_start_sli_duration_seconds")
		check("kubelet_pod_start_sli_duration_seconds", k > 0)
		v, _ = sumSamples(fams, "kubelet_pleg_relist_duration_seconds")
		check("kubelet_pleg_relist_duration_seconds_count > 0", v > 0)
		return len(missing) == 0, fmt.Sprintf("/metrics lacks %v", missing)
	})
}

func TestLogRotation(t *testing.T) {
	env := requireSuite(t)
	start := time.Now()
	env.restartBerthWith(t, "containerLogMaxSize: 100Ki\ncontainerLogMaxFiles: 3\ncontainerLogMonitorInterval: 3s\n")
	t.Logf("berth restarted with containerLogMaxSize 100Ki, containerLogMaxFiles 3: %s", since(start))
	ns := env.namespace(t)
	// About 10 KB every 0.1 s: each check of the monitor (every 3 s) finds
	// the log over 100 KiB.
	script := `trap 'exit 0' TERM
pad=$(printf '%080d' 0)
i=0
while true; do
	j=0
	while [ $j -lt 100 ]; do i=$((i+1)); j=$((j+1)); echo "line $i $pad"; done
	sleep 0.1
done`
	env.createPod(t, ns, shellPod("chatty", script, onNode()))
	pods, _ := env.waitReady(t, ns, "chatty", 1, 30*time.Second)
	dir := filepath.Join(env.nodeDir, "pod-logs", fmt.Sprintf("%s_%s_%s", ns, "chatty", pods[0].UID), "main")

	// `kubectl logs -f` follows the log through the rotations below.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rc, err := env.kube.CoreV1().Pods(ns).GetLogs("chatty", &v1.PodLogOptions{Follow: true, TailLines: ptrTo(int64(1))}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	type followed struct {
		first, last, n int
		err            error
	}
	followDone := make(chan followed, 1)
	go func() {
		defer rc.Close()
		var f followed
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			n := numbered(sc.Text())
			if f.n > 0 && n != f.last+1 {
				f.err = fmt.Errorf("line %q after line %d", truncate(sc.Bytes(), 40), f.last)
				break
			}
			if f.n == 0 {
				f.first = n
			}
			f.last, f.n = n, f.n+1
		}
		followDone <- f
	}()

	// Rotated files come and go; never more than 3 files in all.
	rotatedName := regexp.MustCompile(`^0\.log\.\d{8}-\d{6}(\.gz)?$`)
	seen := map[string]bool{}
	var maxFiles int
	var listing []string
	began := time.Now()
	env.eventually(t, 40*time.Second, func() (bool, string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false, err.Error()
		}
		listing = listing[:0]
		files := 0
		for _, e := range entries {
			name := e.Name()
			listing = append(listing, name)
			if strings.HasSuffix(name, ".tmp") {
				continue // a compression in progress
			}
			files++
			if rotatedName.MatchString(name) {
				seen[strings.TrimSuffix(name, ".gz")] = true
			}
		}
		if files > maxFiles {
			maxFiles = files
		}
		if files > 3 {
			t.Errorf("%d files in %s: %v; want at most 3", files, dir, listing)
		}
		return len(seen) >= 3, fmt.Sprintf("rotated files seen: %v; now %v", keys(seen), listing)
	})
	t.Logf("3 rotations in %s; at most %d files at a time; now %v", since(began), maxFiles, listing)

	cancel()
	if f := <-followDone; f.err != nil || f.n == 0 {
		t.Errorf("follow through the rotations: lines %d to %d, then %v", f.first, f.last, f.err)
	} else {
		t.Logf("follow through the rotations: lines %d to %d, no gap", f.first, f.last)
	}

	// The log reads across the rotated files: more lines than the current
	// file holds, without gap or repeat.
	current, err := os.ReadFile(filepath.Join(dir, "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	inCurrent := strings.Count(string(current), "\n")
	out, err := env.podLogs(ns, "chatty", &v1.PodLogOptions{TailLines: ptrTo(int64(inCurrent + 500))})
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(out)
	if _, _, err := consecutive(ls); err != nil || len(ls) != inCurrent+500 {
		t.Errorf("tailLines=%d across rotation: %d lines: %v", inCurrent+500, len(ls), err)
	}
	out, err = env.podLogs(ns, "chatty", &v1.PodLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ls = lines(out)
	first, last, err := consecutive(ls)
	if err != nil || first <= 1 {
		t.Errorf("whole log after rotations: %d lines from %d to %d: %v; want consecutive lines, the oldest rotated away", len(ls), first, last, err)
	}
	// And the newest lines keep coming.
	env.eventually(t, 10*time.Second, func() (bool, string) {
		out, err := env.podLogs(ns, "chatty", &v1.PodLogOptions{TailLines: ptrTo(int64(1))})
		if err != nil {
			return false, err.Error()
		}
		n := numbered(out)
		return n > last, fmt.Sprintf("tailLines=1 gives %q; want a line after %d", out, last)
	})
	t.Logf("whole log: lines %d to %d", first, last)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
