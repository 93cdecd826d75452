package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// authRegistryAddr is the only address the suite's containerd pulls from
// over plain HTTP (hack/containerd.sh's default BERTH_INSECURE_REGISTRIES).
const authRegistryAddr = "127.0.0.1:5000"

// The user the test's registry accepts (htpasswd, basic auth).
const (
	registryUser     = "berth"
	registryPassword = "s3cret-pull"
)

// startAuthRegistry runs hack/registry.sh's registry with basic auth on
// authRegistryAddr until t ends, and pushes the busybox archive to it as
// name (and as each of more, each a distinct image); it returns the image
// named name and the registry's log. It skips t when the
// registry's tools are missing or the address is taken: another registry
// there (a developer's, the standalone suite's) does not ask for our user.
func (env *environment) startAuthRegistry(t *testing.T, name string, more ...string) (image, logPath string) {
	t.Helper()
	for _, tool := range []string{"docker-registry", "skopeo", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("pull secret test needs %s (Debian packages docker-registry, skopeo, curl): %v", tool, err)
		}
	}
	// hack/registry.sh hashes the password with htpasswd, or else python3.
	if _, err := exec.LookPath("htpasswd"); err != nil {
		if _, err := exec.LookPath("python3"); err != nil {
			t.Skipf("pull secret test needs htpasswd (apache2-utils) or python3: %v", err)
		}
	}
	if ln, err := net.Listen("tcp", authRegistryAddr); err != nil {
		t.Skipf("%s is taken (%v): the suite's containerd pulls over plain HTTP only from there, so the authenticated registry cannot start", authRegistryAddr, err)
	} else {
		ln.Close()
	}
	dir, err := os.MkdirTemp(env.stateDir, "registry-")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(env.repo, "hack", "registry.sh")
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(script, args...)
		cmd.Dir = env.repo
		cmd.Env = append(os.Environ(), "REGISTRY_ADDR="+authRegistryAddr, "BERTH_REGISTRY_AUTH="+registryUser+":"+registryPassword)
		return cmd.CombinedOutput()
	}
	if out, err := run("up", dir); err != nil {
		if strings.Contains(string(out), "something else already serves") {
			t.Skipf("%s was taken a moment ago: %s", authRegistryAddr, out)
		}
		t.Fatalf("hack/registry.sh up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := run("down", dir); err != nil {
			t.Errorf("hack/registry.sh down: %v\n%s", err, out)
			return
		}
		if t.Failed() {
			// Kept with the suite's state for a look.
			t.Logf("registry log in %s", filepath.Join(dir, "registry.log"))
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the registry's storage: %v", err)
		}
	})
	for _, n := range append([]string{name}, more...) {
		archive := env.distinctImage(t, dir, n)
		if out, err := run("push", archive, n); err != nil {
			t.Fatalf("hack/registry.sh push %s %s: %v\n%s", archive, n, err, out)
		}
	}
	return authRegistryAddr + "/" + name, filepath.Join(dir, "registry.log")
}

// distinctImage builds, into dir, an archive of the busybox image whose
// configuration names name, so that its image ID is its own. A pulled
// copy of the very busybox image that hack/images.sh preloads would share
// that image's ID, and with it the kubelet's pull record: every pod using
// the preloaded image would then have to verify its credentials
// (imagePullCredentialsVerificationPolicy), as on upstream's kubelet.
func (env *environment) distinctImage(t *testing.T, dir, name string) string {
	t.Helper()
	images := filepath.Join(env.repo, "_output", "images")
	archive := filepath.Join(dir, "image.tar")
	cmd := exec.Command(filepath.Join(images, "bin", "mkimage"), "-o", archive, "-name", "berth.local/"+name,
		"-rootfs", filepath.Join(images, "rootfs", "busybox"), "-cmd", `["sh"]`, "-env", "BERTH_TEST_IMAGE="+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build image %s: %v\n%s", name, err, out)
	}
	return archive
}

// dockerConfigSecret is a kubernetes.io/dockerconfigjson Secret with one
// user for registry.
func dockerConfigSecret(name, registry, user, password string) *v1.Secret {
	doc, _ := json.Marshal(map[string]any{"auths": map[string]any{registry: map[string]string{
		"username": user,
		"password": password,
		"auth":     base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	return &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       v1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{v1.DockerConfigJsonKey: doc},
	}
}

func withPullSecrets(names ...string) podOption {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, v1.LocalObjectReference{Name: n})
		}
	}
}

// pullFailure is a waitPod condition: container "main" waits with a pull
// failure that names the registry's refusal. It records the waiting
// reasons it sees in seen.
func pullFailure(seen *[]string) func(p *v1.Pod) (bool, string) {
	return func(p *v1.Pod) (bool, string) {
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Waiting == nil {
			return false, "want container main waiting on its image"
		}
		w := cs.State.Waiting
		if len(*seen) == 0 || (*seen)[len(*seen)-1] != w.Reason {
			*seen = append(*seen, w.Reason)
		}
		if !slices.Contains([]string{"ErrImagePull", "ImagePullBackOff"}, w.Reason) {
			return false, "want waiting reason ErrImagePull or ImagePullBackOff"
		}
		// The back-off message repeats the last pull error, as upstream's.
		if !unauthorized(w.Message) {
			return false, "want the waiting message to name the registry's 401"
		}
		return true, ""
	}
}

// unauthorizedEvent is a condition: an event about the pod says that the
// registry answered 401.
func (env *environment) unauthorizedEvent(ns, name string) func() (bool, string) {
	return func() (bool, string) {
		events, err := env.events(ns, name)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range events {
			if e.Type == v1.EventTypeWarning && unauthorized(e.Message) {
				return true, ""
			}
			seen = append(seen, describeEvent(e))
		}
		return false, fmt.Sprintf("no warning event of %s/%s names the registry's 401; have [%s]", ns, name, strings.Join(seen, "; "))
	}
}

// noPullContainers fails t if the pod, whose image cannot be pulled, has
// containers in the runtime.
func (env *environment) noPullContainers(t *testing.T, p *v1.Pod) {
	t.Helper()
	if cs, err := env.podContainers(p.UID); err != nil || len(cs) > 0 {
		t.Errorf("containers of a pod whose image cannot be pulled: %s (%v)", describeContainers(cs), err)
	}
}

func unauthorized(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "401") || strings.Contains(m, "unauthorized")
}

// TestImagePullSecret pulls from a registry that asks for a login: without
// credentials and with wrong ones the pull fails with the registry's 401,
// with a pod's imagePullSecrets or those its ServiceAccount lends it, the
// pod runs. Every pod pulls (policy Always), so a copy of the image that an
// earlier pod pulled does not let a later one through.
func TestImagePullSecret(t *testing.T) {
	env := requireSuite(t)
	image, registryLog := env.startAuthRegistry(t, "private/busybox:1")
	ns := env.namespace(t)

	ctx, cancel := apiContext()
	defer cancel()
	for _, s := range []*v1.Secret{
		dockerConfigSecret("good", authRegistryAddr, registryUser, registryPassword),
		dockerConfigSecret("wrong", authRegistryAddr, registryUser, "not-the-password"),
	} {
		if _, err := env.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create secret %s/%s: %v", ns, s.Name, err)
		}
	}

	private := func(name string, opts ...podOption) *v1.Pod {
		opts = append([]podOption{withImage(image), withMain(func(c *v1.Container) { c.ImagePullPolicy = v1.PullAlways })}, opts...)
		return sleeper(name, opts...)
	}
	// Created before the ServiceAccount lends its secrets below: the
	// admission plugin would otherwise give them to "anonymous" too.
	env.createPod(t, ns, private("anonymous"))
	env.createPod(t, ns, private("with-secret", withPullSecrets("good")))
	env.createPod(t, ns, private("wrong-secret", withPullSecrets("wrong")))

	sa, err := env.kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the default ServiceAccount: %v", err)
	}
	sa.ImagePullSecrets = []v1.LocalObjectReference{{Name: "good"}}
	if _, err := env.kube.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("give the default ServiceAccount the pull secret: %v", err)
	}
	// The admission plugin reads ServiceAccounts from an informer: wait
	// (with dry runs) until it has seen the update.
	viaSA := private("via-serviceaccount")
	env.eventually(t, 10*time.Second, func() (bool, string) {
		ctx, cancel := apiContext()
		defer cancel()
		p, err := env.kube.CoreV1().Pods(ns).Create(ctx, viaSA.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err.Error()
		}
		return len(p.Spec.ImagePullSecrets) > 0, fmt.Sprintf("dry-run pod's imagePullSecrets %v", p.Spec.ImagePullSecrets)
	})
	created := env.createPod(t, ns, viaSA)
	if want := []v1.LocalObjectReference{{Name: "good"}}; !slices.Equal(created.Spec.ImagePullSecrets, want) {
		t.Errorf("pod via-serviceaccount: imagePullSecrets %v, want %v from the ServiceAccount", created.Spec.ImagePullSecrets, want)
	}

	t.Run("no pull secret", func(t *testing.T) {
		var seen []string
		p, took := env.waitPod(t, ns, "anonymous", 30*time.Second, pullFailure(&seen))
		t.Logf("pull failed after %s; waiting reasons seen %v: %s", took.Round(time.Millisecond), seen, describePod(p))
		env.noPullContainers(t, p)
		env.eventually(t, 10*time.Second, env.unauthorizedEvent(ns, p.Name))
	})
	t.Run("pod's pull secret", func(t *testing.T) {
		p, took := env.readyPod(t, ns, "with-secret", 30*time.Second)
		t.Logf("Ready after %s", took.Round(time.Millisecond))
		if cs := containerStatus(p, "main"); cs == nil || cs.ImageID == "" {
			t.Errorf("no imageID in the container status: %s", describePod(p))
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		var seen []string
		p, took := env.waitPod(t, ns, "wrong-secret", 30*time.Second, pullFailure(&seen))
		t.Logf("pull failed after %s; waiting reasons seen %v: %s", took.Round(time.Millisecond), seen, describePod(p))
		env.noPullContainers(t, p)
		env.eventually(t, 10*time.Second, env.unauthorizedEvent(ns, p.Name))
		// Only this pod's pulls send a wrong password: the registry's log
		// shows that berth passed the secret's user on to containerd.
		env.eventually(t, 5*time.Second, func() (bool, string) {
			log, err := os.ReadFile(registryLog)
			if err != nil {
				return false, err.Error()
			}
			// logrus quotes the message, escaping its quotes.
			want := fmt.Sprintf(`error authenticating user \"%s\"`, registryUser)
			return strings.Contains(string(log), want), fmt.Sprintf("registry log lacks %s:\n%s", want, truncate(log, 2000))
		})
	})
	t.Run("ServiceAccount's pull secret", func(t *testing.T) {
		_, took := env.readyPod(t, ns, "via-serviceaccount", 30*time.Second)
		t.Logf("Ready after %s", took.Round(time.Millisecond))
	})
}
