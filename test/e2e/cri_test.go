package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

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

// containers lists the CRI containers (any state) of the static pod made
// from the manifest pod named name, oldest first.
func (env *environment) containers(name string) ([]*runtimeapi.Container, error) {
	ctx, cancel := criContext()
	defer cancel()
	cs, err := env.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{labelPodName: staticName(name)},
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt < cs[j].CreatedAt })
	return cs, nil
}

// containersNamed is containers, only those of the pod's container cname.
func (env *environment) containersNamed(name, cname string) ([]*runtimeapi.Container, error) {
	cs, err := env.containers(name)
	if err != nil {
		return nil, err
	}
	var out []*runtimeapi.Container
	for _, c := range cs {
		if c.Labels[labelContainerName] == cname {
			out = append(out, c)
		}
	}
	return out, nil
}

// sandboxes lists the CRI sandboxes (any state) of the static pod made from
// the manifest pod named name, by label or, failing that, metadata name.
func (env *environment) sandboxes(name string) ([]*runtimeapi.PodSandbox, error) {
	ctx, cancel := criContext()
	defer cancel()
	all, err := env.rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []*runtimeapi.PodSandbox
	for _, s := range all {
		if s.Labels[labelPodName] == staticName(name) || s.GetMetadata().GetName() == staticName(name) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, nil
}

// containerStatus returns the runtime's status of one container.
func (env *environment) containerStatus(id string) (*runtimeapi.ContainerStatus, error) {
	ctx, cancel := criContext()
	defer cancel()
	resp, err := env.rt.ContainerStatus(ctx, id, false)
	if err != nil {
		return nil, fmt.Errorf("container status %s: %w", shortID(id), err)
	}
	return resp.GetStatus(), nil
}

// removeAllPods stops and removes every sandbox in the runtime (which takes
// their containers along) and checks that nothing is left.
func (env *environment) removeAllPods() error {
	// containerd 1.6 can fail a stop that races with the container's own
	// exit ("ttrpc: closed"); the next attempt finds it stopped.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = env.removeAllPodsOnce(); err == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return err
}

func (env *environment) removeAllPodsOnce() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sbs, err := env.rt.ListPodSandbox(ctx, nil)
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
	// Containers whose sandbox is already gone.
	cs, err := env.rt.ListContainers(ctx, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	}
	for _, c := range cs {
		if err := env.rt.RemoveContainer(ctx, c.Id); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.GetMetadata().GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// describeContainers is a one-line summary for failure messages.
func describeContainers(cs []*runtimeapi.Container) string {
	if len(cs) == 0 {
		return "no containers"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s/%s(attempt %d, %s, pod uid %s)",
			c.Labels[labelContainerName], shortID(c.Id), c.GetMetadata().GetAttempt(),
			strings.TrimPrefix(c.State.String(), "CONTAINER_"), c.Labels[labelPodUID]))
	}
	return strings.Join(parts, ", ")
}

func describeSandboxes(sbs []*runtimeapi.PodSandbox) string {
	if len(sbs) == 0 {
		return "no sandboxes"
	}
	var parts []string
	for _, s := range sbs {
		parts = append(parts, fmt.Sprintf("%s(%s)", shortID(s.Id), strings.TrimPrefix(s.State.String(), "SANDBOX_")))
	}
	return strings.Join(parts, ", ")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func running(cs []*runtimeapi.Container) []*runtimeapi.Container {
	var out []*runtimeapi.Container
	for _, c := range cs {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			out = append(out, c)
		}
	}
	return out
}
