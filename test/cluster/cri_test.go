package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The labels berth puts on what it creates (upstream's keys).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

func criContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// listContainers lists the containers (any state) whose labels include
// selector, oldest first.
func (env *environment) listContainers(selector map[string]string) ([]*runtimeapi.Container, error) {
	ctx, cancel := criContext()
	defer cancel()
	cs, err := env.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt < cs[j].CreatedAt })
	return cs, nil
}

// containersIn lists the containers of every pod in namespace ns.
func (env *environment) containersIn(ns string) ([]*runtimeapi.Container, error) {
	return env.listContainers(map[string]string{labelPodNamespace: ns})
}

// podContainers lists the containers of the pod with uid.
func (env *environment) podContainers(uid types.UID) ([]*runtimeapi.Container, error) {
	return env.listContainers(map[string]string{labelPodUID: string(uid)})
}

// noContainers is a condition: the pod with uid has no container in the
// runtime, in any state. With running set, it is enough that none runs.
func (env *environment) noContainers(uid types.UID, running bool) func() (bool, string) {
	return func() (bool, string) {
		cs, err := env.podContainers(uid)
		if err != nil {
			return false, err.Error()
		}
		if running {
			cs = runningOnly(cs)
		}
		return len(cs) == 0, fmt.Sprintf("pod uid %s: %s", uid, describeContainers(cs))
	}
}

// exec runs cmd in the container with id and returns its stdout, an error
// if it fails.
func (env *environment) exec(id string, cmd ...string) (string, error) {
	ctx, cancel := criContext()
	defer cancel()
	stdout, stderr, err := env.rt.ExecSync(ctx, id, cmd, 5*time.Second)
	if err != nil {
		return string(stdout), fmt.Errorf("exec %v in %s: %w (stderr %q)", cmd, shortID(id), err, stderr)
	}
	return string(stdout), nil
}

// removeFromRuntime stops and removes every sandbox of namespace ns, with
// its containers: the last resort of a test's clean-up.
func (env *environment) removeFromRuntime(ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sbs, err := env.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodNamespace: ns}})
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	var errs []error
	for _, s := range sbs {
		if err := env.rt.StopPodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", s.GetMetadata().GetName(), err))
			continue
		}
		if err := env.rt.RemovePodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", s.GetMetadata().GetName(), err))
		}
	}
	return errors.Join(errs...)
}

func runningOnly(cs []*runtimeapi.Container) []*runtimeapi.Container {
	var out []*runtimeapi.Container
	for _, c := range cs {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			out = append(out, c)
		}
	}
	return out
}

// describeContainers is a one-line summary for failure messages.
func describeContainers(cs []*runtimeapi.Container) string {
	if len(cs) == 0 {
		return "no containers"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s/%s/%s(attempt %d, %s)",
			c.Labels[labelPodName], c.Labels[labelContainerName], shortID(c.Id), c.GetMetadata().GetAttempt(),
			strings.TrimPrefix(c.State.String(), "CONTAINER_")))
	}
	return strings.Join(parts, ", ")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
