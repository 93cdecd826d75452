package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestImagePullCredentialVerification: with the default
// imagePullCredentialsVerificationPolicy (NeverVerifyPreloadedImages), an
// image that a pod pulled with its pull secret is not handed to a pod
// without it, even with pull policy IfNotPresent: that pod pulls with its
// own (no) credentials and fails with the registry's 401, as upstream's
// kubelet. A pod with the secret uses the image without a pull. The pull
// is recorded under the root directory as upstream records it.
func TestImagePullCredentialVerification(t *testing.T) {
	env := requireSuite(t)
	image, _ := env.startAuthRegistry(t, "private/verify:1")
	ns := env.namespace(t)
	ctx, cancel := apiContext()
	defer cancel()
	if _, err := env.kube.CoreV1().Secrets(ns).Create(ctx, dockerConfigSecret("good", authRegistryAddr, registryUser, registryPassword), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret: %v", err)
	}
	ifNotPresent := func(name string, opts ...podOption) *v1.Pod {
		opts = append([]podOption{withImage(image), withMain(func(c *v1.Container) { c.ImagePullPolicy = v1.PullIfNotPresent })}, opts...)
		return sleeper(name, opts...)
	}

	// A pulls the private image with its secret.
	env.createPod(t, ns, ifNotPresent("a-with-secret", withPullSecrets("good")))
	a, took := env.readyPod(t, ns, "a-with-secret", 60*time.Second)
	t.Logf("A Ready after %s", took.Round(time.Millisecond))
	env.eventually(t, 10*time.Second, env.eventReasons(ns, a.Name, "Pulling", "Pulled"))

	// The pull is on record: the image name without its tag, the
	// secret's coordinates and credential hash.
	pulledDir := filepath.Join(env.nodeDir, "root", "image_manager", "pulled")
	var record string
	env.eventually(t, 5*time.Second, func() (bool, string) {
		entries, err := os.ReadDir(pulledDir)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(pulledDir, e.Name()))
			if err != nil {
				continue
			}
			s := string(data)
			if strings.Contains(s, `"`+strings.TrimSuffix(image, ":1")+`":{"kubernetesSecrets":[{`) &&
				strings.Contains(s, `"namespace":"`+ns+`","name":"good"`) && strings.Contains(s, `"credentialHash":"`) &&
				strings.HasPrefix(s, `{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1"`) {
				record = s
				return true, ""
			}
			seen = append(seen, s)
		}
		return false, fmt.Sprintf("no pulled record for %s with secret %s/good in %s: %v", image, ns, pulledDir, seen)
	})
	t.Logf("pulled record: %s", strings.TrimSpace(record))

	// B has no secret: the image is on the node, yet B must pull, and fails.
	env.createPod(t, ns, ifNotPresent("b-no-secret"))
	var seen []string
	b, took := env.waitPod(t, ns, "b-no-secret", 60*time.Second, pullFailure(&seen))
	t.Logf("B's pull failed after %s; waiting reasons seen %v", took.Round(time.Millisecond), seen)
	env.noPullContainers(t, b)
	env.eventually(t, 10*time.Second, env.unauthorizedEvent(ns, b.Name))

	// C has the secret: it runs without pulling.
	env.createPod(t, ns, ifNotPresent("c-with-secret", withPullSecrets("good")))
	c, took := env.readyPod(t, ns, "c-with-secret", 60*time.Second)
	t.Logf("C Ready after %s", took.Round(time.Millisecond))
	events, err := env.events(ns, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	accessed := false
	for _, e := range events {
		if e.Reason == "Pulling" {
			t.Errorf("C pulled: %s", describeEvent(e))
		}
		accessed = accessed || (e.Reason == "Pulled" && strings.Contains(e.Message, "already present on machine and can be accessed by the pod"))
	}
	if !accessed {
		t.Errorf("no Pulled event saying the image can be accessed by C: %v", events)
	}
}
