package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Shared by volumes_test.go and probes_test.go.

// withVolume adds vol to the pod and mounts it into container "main" as
// mount says (mount.Name is set to vol.Name).
func withVolume(vol v1.Volume, mount v1.VolumeMount) podOption {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, vol)
		mount.Name = vol.Name
		p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, mount)
	}
}

func withRestartPolicy(rp v1.RestartPolicy) podOption {
	return func(p *v1.Pod) { p.Spec.RestartPolicy = rp }
}

// withMain edits container "main".
func withMain(edit func(c *v1.Container)) podOption {
	return func(p *v1.Pod) { edit(&p.Spec.Containers[0]) }
}

func configMapVolume(name, configMap string) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{
		ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: configMap}},
	}}
}

func emptyDirVolume(name string) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}
}

func hostPathVolume(name, path string, typ v1.HostPathType) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: path, Type: &typ}}}
}

func execAction(cmd ...string) v1.ProbeHandler {
	return v1.ProbeHandler{Exec: &v1.ExecAction{Command: cmd}}
}

// fastProbe probes every second and reacts to the first result.
func fastProbe(h v1.ProbeHandler) *v1.Probe {
	return &v1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
}

func (env *environment) createConfigMap(t *testing.T, ns, name string, data map[string]string) *v1.ConfigMap {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	cm, err := env.kube.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap %s/%s: %v", ns, name, err)
	}
	return cm
}

func (env *environment) createSecret(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.CoreV1().Secrets(ns).Create(ctx, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret %s/%s: %v", ns, name, err)
	}
}

// waitPod polls the pod ns/name until cond holds and returns it.
func (env *environment) waitPod(t *testing.T, ns, name string, timeout time.Duration, cond func(p *v1.Pod) (bool, string)) (*v1.Pod, time.Duration) {
	t.Helper()
	var last *v1.Pod
	took := env.eventually(t, timeout, func() (bool, string) {
		p, err := env.getPod(ns, name)
		if err != nil {
			return false, err.Error()
		}
		if p == nil {
			return false, fmt.Sprintf("pod %s/%s does not exist", ns, name)
		}
		last = p
		ok, msg := cond(p)
		return ok, msg + ": " + describePod(p)
	})
	return last, took
}

// readyPod waits until the pod ns/name is Ready and returns it.
func (env *environment) readyPod(t *testing.T, ns, name string, timeout time.Duration) (*v1.Pod, time.Duration) {
	t.Helper()
	return env.waitPod(t, ns, name, timeout, func(p *v1.Pod) (bool, string) { return podReady(p), "want Ready" })
}

// containerStatus is the API status of the (init) container named name.
func containerStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// runningID is the runtime ID of the running container name of p as the
// API reports it; it fails t when that container does not run.
func runningID(t *testing.T, p *v1.Pod, name string) string {
	t.Helper()
	cs := containerStatus(p, name)
	if cs == nil || cs.State.Running == nil || cs.ContainerID == "" {
		t.Fatalf("container %s of pod %s does not run: %s", name, p.Name, describePod(p))
	}
	_, id, _ := strings.Cut(cs.ContainerID, "://")
	return id
}

// execOK runs cmd in the container with id and fails t if that fails.
func (env *environment) execOK(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	out, err := env.exec(id, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// execScript runs a shell script in the container with id.
func (env *environment) execScript(t *testing.T, id, script string) string {
	t.Helper()
	return env.execOK(t, id, "sh", "-c", script)
}

// podDir is the pod's directory under berth's root dir.
func (env *environment) podDir(uid types.UID) string {
	return filepath.Join(env.nodeDir, "root", "pods", string(uid))
}

// hostMountsUnder lists the mount points of this (the host's) mount
// namespace at or below dir.
func hostMountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// hostMountType is the file system type of the host mount at exactly dir,
// "" when dir is no mount point.
func hostMountType(dir string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	typ := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || unescapeMount(fields[4]) != dir {
			continue
		}
		if f := strings.Fields(post); len(f) > 0 {
			typ = f[0] // the last mount on dir wins
		}
	}
	return typ, sc.Err()
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// podDirGone is a condition: the pod's directory under berth's root dir
// and every mount below it are gone.
func (env *environment) podDirGone(uid types.UID) func() (bool, string) {
	dir := env.podDir(uid)
	return func() (bool, string) {
		mounts, err := hostMountsUnder(dir)
		if err != nil {
			return false, err.Error()
		}
		_, statErr := os.Stat(dir)
		if os.IsNotExist(statErr) && len(mounts) == 0 {
			return true, ""
		}
		var left []string
		_ = filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
			if err == nil && len(left) < 20 {
				left = append(left, strings.TrimPrefix(path, dir))
			}
			return nil
		})
		return false, fmt.Sprintf("pod directory %s: stat %v; mounts %v; entries %v", dir, statErr, mounts, left)
	}
}

// adminRESTConfig is the admin kubeconfig's REST config.
func (env *environment) adminRESTConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(env.stateDir, "admin.kubeconfig"))
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	return cfg
}

// kubeletGetTLS GETs path from berth's kubelet API over TLS, as the admin
// (client certificate) when asAdmin, else without credentials. The port
// is the one berth publishes in its Node; the serving certificate is the
// self-signed one berth keeps under its root dir.
func (env *environment) kubeletGetTLS(t *testing.T, path string, asAdmin bool) (int, string) {
	t.Helper()
	n, err := env.getNode()
	if err != nil {
		t.Fatal(err)
	}
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 {
		t.Fatalf("node %s publishes no kubelet port", nodeName)
	}
	tlsConfig := &tls.Config{RootCAs: x509.NewCertPool()}
	servingCert := filepath.Join(env.nodeDir, "root", "pki", "kubelet.crt")
	pem, err := os.ReadFile(servingCert)
	if err != nil {
		t.Fatalf("berth's serving certificate: %v", err)
	}
	if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", servingCert)
	}
	if asAdmin {
		pki := filepath.Join(env.stateDir, "pki")
		cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
		if err != nil {
			t.Fatalf("admin client certificate: %v", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s from berth: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s from berth: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// ensureBerthRuns starts berth again at the end of a test that stopped it
// and failed before starting it: the namespace's clean-up needs it. Call
// after namespace, so that it runs first.
func (env *environment) ensureBerthRuns(t *testing.T) {
	t.Cleanup(func() {
		if !env.berth.running() {
			if err := env.berth.start(); err != nil {
				t.Errorf("start berth again: %v", err)
			}
		}
	})
}
