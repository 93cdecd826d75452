package kubeadm

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// poll calls cond until it holds, returns an error or timeout passes; the
// error carries cond's last message.
func poll(timeout time.Duration, cond func() (bool, string, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, msg, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if err != nil {
			return time.Since(start), fmt.Errorf("after %s: %v (last: %s)", since(start), err, msg)
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("not within %s: %s", timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	d, err := poll(timeout, func() (bool, string, error) {
		ok, msg := cond()
		return ok, msg, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nodeReady reports the node's Ready condition.
func (env *environment) nodeReady(ctx context.Context, name string) (bool, string) {
	return nodeReadyIn(ctx, env.kube, name)
}

func nodeReadyIn(ctx context.Context, kube kubernetes.Interface, name string) (bool, string) {
	n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return false, "no Ready condition"
}

// namespace creates a namespace for t, deleted when t ends, and waits for
// its default ServiceAccount, which pods need.
func (env *environment) namespace(t *testing.T, name string) string {
	t.Helper()
	return namespaceIn(t, env.kube, name)
}

func namespaceIn(t *testing.T, kube kubernetes.Interface, name string) string {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	eventually(t, 60*time.Second, func() (bool, string) {
		_, err := kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return name
}

// podRunning waits for the pod to run on node and returns it.
func (env *environment) podRunning(t *testing.T, ns, name, node string) *v1.Pod {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	var pod *v1.Pod
	eventually(t, 90*time.Second, func() (bool, string) {
		p, err := env.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return p.Status.Phase == v1.PodRunning && p.Spec.NodeName == node,
			fmt.Sprintf("phase %s on %q, conditions %v", p.Status.Phase, p.Spec.NodeName, p.Status.Conditions)
	})
	return pod
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tail returns at most maxLines last lines of the file from offset on.
func tail(path string, offset int64, maxLines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > maxLines {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
