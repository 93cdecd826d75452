package credprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"sigs.k8s.io/yaml"
)

// execTimeout bounds one run of a plugin, as upstream's catch-all.
const execTimeout = time.Minute

// request is what a plugin is asked.
type request struct {
	image       string
	token       string
	annotations map[string]string
}

// runner runs a plugin; execPlugin is the real one.
type runner interface {
	run(ctx context.Context, req request) (*credentialproviderv1.CredentialProviderResponse, error)
}

// execPlugin runs <binDir>/<name> with the configured args and env, the
// request on its stdin, and reads the response from its stdout.
type execPlugin struct {
	name       string
	path       string
	apiVersion string
	args       []string
	env        []string // the node's environment, then the configured vars
}

func newExecPlugin(binDir string, p kubeletconfigv1.CredentialProvider) *execPlugin {
	env := os.Environ()
	for _, v := range p.Env {
		env = append(env, v.Name+"="+v.Value)
	}
	return &execPlugin{name: p.Name, path: filepath.Join(binDir, p.Name), apiVersion: p.APIVersion, args: p.Args, env: env}
}

func (e *execPlugin) run(ctx context.Context, req request) (*credentialproviderv1.CredentialProviderResponse, error) {
	in, err := json.Marshal(credentialproviderv1.CredentialProviderRequest{
		TypeMeta:                  metav1.TypeMeta{APIVersion: e.apiVersion, Kind: "CredentialProviderRequest"},
		Image:                     req.image,
		ServiceAccountToken:       req.token,
		ServiceAccountAnnotations: req.annotations,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to encode auth request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, e.path, e.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = bytes.NewReader(in), &stdout, &stderr, e.env
	err = cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("error execing credential provider plugin %s for image %s: %w: %s", e.name, req.image, err, stderr.String())
	}
	return decodeResponse(stdout.Bytes(), e.apiVersion)
}

// decodeResponse checks the response's apiVersion and kind and decodes it
// strictly. Decoding errors are not wrapped: they may quote credentials.
func decodeResponse(data []byte, apiVersion string) (*credentialproviderv1.CredentialProviderResponse, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("error reading GVK from response: %w", err)
	}
	if tm.APIVersion != apiVersion {
		return nil, fmt.Errorf("apiVersion from credential plugin response did not match expected apiVersion:%s, actual apiVersion:%s", apiVersion, tm.APIVersion)
	}
	if tm.Kind != "CredentialProviderResponse" {
		return nil, fmt.Errorf("failed to decode CredentialProviderResponse, unexpected Kind: %q", tm.Kind)
	}
	var resp credentialproviderv1.CredentialProviderResponse
	if err := yaml.UnmarshalStrict(data, &resp); err != nil {
		return nil, errors.New("error decoding credential provider plugin response from stdout")
	}
	return &resp, nil
}
