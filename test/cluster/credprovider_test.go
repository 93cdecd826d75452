package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The suite's credential provider plugins (--image-credential-provider-*):
// each answers only for images under its path on the authenticated
// registry, so they stay out of every other test's pulls.
const (
	nodeProvider      = "cp-node" // node credentials, cached per registry
	saProvider        = "cp-sa"   // service account token mode, cached per image
	saProviderAud     = "berth-test-registry"
	saProviderRequire = "berth.test/registry-access"
)

// providerScript is the tests' own credential provider: it appends each
// request (one JSON line) to BERTH_CP_LOG and answers with the registry's
// user, cached by its arguments' key type and duration. With
// BERTH_CP_NEED_TOKEN=1 it gives nothing to a request without a token.
const providerScript = `#!/bin/sh
req=$(cat)
printf '%s\n' "$req" >> "$BERTH_CP_LOG"
case "$req" in
*'"serviceAccountToken":"'*) ;;
*) if [ "$BERTH_CP_NEED_TOKEN" = 1 ]; then
	printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"%s","cacheDuration":"0s"}' "$1"
	exit 0
fi ;;
esac
printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"%s","cacheDuration":"%s","auth":{"%s":{"username":"%s","password":"%s"}}}' \
	"$1" "$2" "$BERTH_CP_REGISTRY" "$BERTH_CP_USER" "$BERTH_CP_PASSWORD"
`

// providerDir holds the plugins' binaries, configuration and request logs.
func (env *environment) providerDir() string {
	return filepath.Join(env.nodeDir, "credential-providers")
}

func (env *environment) providerLog(name string) string {
	return filepath.Join(env.providerDir(), name+".requests")
}

// writeCredentialProviders writes the plugins and their configuration and
// returns the config file and the binaries' directory.
func (env *environment) writeCredentialProviders() (config, binDir string, err error) {
	binDir = filepath.Join(env.providerDir(), "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", "", err
	}
	for _, name := range []string{nodeProvider, saProvider} {
		if err := os.WriteFile(filepath.Join(binDir, name), []byte(providerScript), 0o755); err != nil {
			return "", "", err
		}
	}
	env1 := func(name string) string {
		return fmt.Sprintf(`  - {name: BERTH_CP_LOG, value: %q}
  - {name: BERTH_CP_REGISTRY, value: %q}
  - {name: BERTH_CP_USER, value: %q}
  - {name: BERTH_CP_PASSWORD, value: %q}
`, env.providerLog(name), authRegistryAddr, registryUser, registryPassword)
	}
	doc := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: %s
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  matchImages: ["%s/%s"]
  defaultCacheDuration: 10m
  args: [Registry, 1h]
  env:
%s- name: %s
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  matchImages: ["%s/%s"]
  defaultCacheDuration: 10m
  args: [Image, 1h]
  env:
%s  - {name: BERTH_CP_NEED_TOKEN, value: "1"}
  tokenAttributes:
    serviceAccountTokenAudience: %s
    requireServiceAccount: true
    cacheType: ServiceAccount
    requiredServiceAccountAnnotationKeys: [%s]
`, nodeProvider, authRegistryAddr, nodeProvider, env1(nodeProvider),
		saProvider, authRegistryAddr, saProvider, env1(saProvider), saProviderAud, saProviderRequire)
	config = filepath.Join(env.providerDir(), "config.yaml")
	return config, binDir, os.WriteFile(config, []byte(doc), 0o644)
}

// providerRequest is what the test reads back of a plugin's request.
type providerRequest struct {
	Image                     string            `json:"image"`
	ServiceAccountToken       string            `json:"serviceAccountToken"`
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations"`
}

func (env *environment) providerRequests(t *testing.T, name string) []providerRequest {
	t.Helper()
	b, err := os.ReadFile(env.providerLog(name))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []providerRequest
	for _, line := range lines(string(b)) {
		var r providerRequest
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("plugin %s request %q: %v", name, line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestImageCredentialProvider pulls from the registry that asks for a
// login with credentials from berth's credential provider plugins only (no
// pull secrets): node credentials, cached per registry, and credentials
// for a service account token, which only pods whose ServiceAccount
// carries the annotation the plugin requires get. Pulls are recorded with
// those credentials, so a pod that cannot show them may not use the image
// already on the node.
func TestImageCredentialProvider(t *testing.T) {
	env := requireSuite(t)
	nodeImage, _ := env.startAuthRegistry(t, nodeProvider+"/busybox:1", saProvider+"/busybox:1")
	saImage := authRegistryAddr + "/" + saProvider + "/busybox:1"
	ns := env.namespace(t)
	nodeBefore, saBefore := len(env.providerRequests(t, nodeProvider)), len(env.providerRequests(t, saProvider))

	pull := func(name, image string, policy v1.PullPolicy, sa string) *v1.Pod {
		return sleeper(name, withImage(image), withMain(func(c *v1.Container) { c.ImagePullPolicy = policy }), func(p *v1.Pod) {
			p.Spec.ServiceAccountName = sa
		})
	}

	t.Run("node credentials, cached per registry", func(t *testing.T) {
		env.createPod(t, ns, pull("node-1", nodeImage, v1.PullAlways, ""))
		_, took := env.readyPod(t, ns, "node-1", 30*time.Second)
		reqs := env.providerRequests(t, nodeProvider)[nodeBefore:]
		if len(reqs) != 1 || reqs[0].Image != authRegistryAddr+"/"+nodeProvider+"/busybox" || reqs[0].ServiceAccountToken != "" {
			t.Fatalf("plugin %s requests %+v, want one for the repository without a token", nodeProvider, reqs)
		}
		t.Logf("Ready after %s, through the plugin", took.Round(time.Millisecond))
		env.createPod(t, ns, pull("node-2", nodeImage, v1.PullAlways, ""))
		env.readyPod(t, ns, "node-2", 30*time.Second)
		if n := len(env.providerRequests(t, nodeProvider)) - nodeBefore; n != 1 {
			t.Errorf("plugin %s ran %d times for two pulls, want once (cached for the registry)", nodeProvider, n)
		}
	})

	ctx, cancel := apiContext()
	defer cancel()
	for name, annotations := range map[string]map[string]string{"puller": {saProviderRequire: "yes"}, "plain": nil} {
		sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
		if _, err := env.kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ServiceAccount %s: %v", name, err)
		}
	}
	env.allowNodeTokenAudience(t, saProviderAud)

	t.Run("service account token", func(t *testing.T) {
		env.createPod(t, ns, pull("sa-1", saImage, v1.PullAlways, "puller"))
		p, took := env.readyPod(t, ns, "sa-1", 30*time.Second)
		reqs := env.providerRequests(t, saProvider)[saBefore:]
		if len(reqs) != 1 || reqs[0].Image != authRegistryAddr+"/"+saProvider+"/busybox" || reqs[0].ServiceAccountAnnotations[saProviderRequire] != "yes" {
			t.Fatalf("plugin %s requests %+v, want one with the ServiceAccount's annotation", saProvider, reqs)
		}
		claims := jwtClaims(t, reqs[0].ServiceAccountToken)
		if aud, _ := json.Marshal(claims["aud"]); !strings.Contains(string(aud), saProviderAud) {
			t.Errorf("token audience %s, want %s", aud, saProviderAud)
		}
		k8s, _ := claims["kubernetes.io"].(map[string]any)
		pod, _ := k8s["pod"].(map[string]any)
		sa, _ := k8s["serviceaccount"].(map[string]any)
		if pod["uid"] != string(p.UID) || sa["name"] != "puller" {
			t.Errorf("token claims %v, want bound to pod %s of ServiceAccount puller", k8s, p.UID)
		}
		t.Logf("Ready after %s, through the plugin with a token of ServiceAccount puller", took.Round(time.Millisecond))
	})

	t.Run("no annotation: no credentials, and the image on the node is not theirs", func(t *testing.T) {
		// IfNotPresent: the image is on the node, pulled with puller's
		// credentials; plain cannot show them, so it must pull, and the
		// plugin does not serve it.
		env.createPod(t, ns, pull("sa-plain", saImage, v1.PullIfNotPresent, "plain"))
		var seen []string
		p, took := env.waitPod(t, ns, "sa-plain", 30*time.Second, pullFailure(&seen))
		t.Logf("pull failed after %s; waiting reasons seen %v", took.Round(time.Millisecond), seen)
		env.noPullContainers(t, p)
		if n := len(env.providerRequests(t, saProvider)) - saBefore; n != 1 {
			t.Errorf("plugin %s ran %d times, want once (not for a ServiceAccount without %s)", saProvider, n, saProviderRequire)
		}
	})

	t.Run("same service account: the image on the node is theirs", func(t *testing.T) {
		env.createPod(t, ns, pull("sa-2", saImage, v1.PullIfNotPresent, "puller"))
		env.readyPod(t, ns, "sa-2", 30*time.Second)
		env.eventually(t, 10*time.Second, func() (bool, string) {
			events, err := env.events(ns, "sa-2")
			if err != nil {
				return false, err.Error()
			}
			var seen []string
			for _, e := range events {
				if e.Reason == "Pulled" && strings.Contains(e.Message, "already present on machine and can be accessed by the pod") {
					return true, ""
				}
				seen = append(seen, describeEvent(e))
			}
			return false, "no Pulled event saying the pod may use the image: " + strings.Join(seen, "; ")
		})
	})
}

// allowNodeTokenAudience lets the node ask for service account tokens for
// audience (the NodeRestriction admission plugin's check for audiences no
// pod volume names), until t ends.
func (env *environment) allowNodeTokenAudience(t *testing.T, audience string) {
	t.Helper()
	ctx, cancel := apiContext()
	defer cancel()
	name := "berth-e2e-token-audience-" + audience
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{audience}, Verbs: []string{"request-serviceaccounts-token-audience"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:node:" + nodeName}},
	}
	if _, err := env.kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ClusterRole %s: %v", name, err)
	}
	if _, err := env.kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ClusterRoleBinding %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := apiContext()
		defer cancel()
		_ = env.kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = env.kube.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	env.eventually(t, 20*time.Second, func() (bool, string) {
		ctx, cancel := apiContext()
		defer cancel()
		sar, err := env.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   "system:node:" + nodeName,
				Groups: []string{"system:nodes", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: "request-serviceaccounts-token-audience", Resource: audience, Namespace: "default", Name: "any",
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err.Error()
		}
		return sar.Status.Allowed, "the node may not request tokens for " + audience + " yet: " + sar.Status.Reason
	})
}

// jwtClaims decodes a token's claims (not verified: the API server issued
// it, and the plugin only passes it on).
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return claims
}
