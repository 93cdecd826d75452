// Package cri talks to the runtime directly: it removes what an agent left
// behind between runs, answers what the API cannot (when a container
// really exited, its pid), and measures the floor — the same pods made
// straight through CRI with no kubelet.
package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the kubelets (upstream's and berth's) put on sandboxes and
// containers.
const (
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// Client is a plain gRPC CRI client: no retries, no logging, so that the
// floor measures the runtime alone.
type Client struct {
	conn *grpc.ClientConn
	RT   runtimeapi.RuntimeServiceClient
}

// Dial connects to endpoint ("unix:///path").
func Dial(endpoint string) (*Client, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		return nil, fmt.Errorf("CRI endpoint %q: want unix://", endpoint)
	}
	conn, err := grpc.NewClient("unix:"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	return &Client{conn: conn, RT: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RemoveAll stops and removes every sandbox (and so every container) in
// the runtime, n at a time, and returns how many there were. A stopped
// agent may have left requests in flight that the runtime still carries
// out, so it tries again until the runtime is empty, for up to a minute.
func (c *Client) RemoveAll(ctx context.Context, parallel int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	removed := 0
	for {
		resp, err := c.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			return removed, fmt.Errorf("list sandboxes: %w", err)
		}
		if len(resp.Items) == 0 {
			return removed, nil
		}
		ids := make([]string, 0, len(resp.Items))
		for _, s := range resp.Items {
			ids = append(ids, s.Id)
		}
		err = c.RemoveSandboxes(ctx, ids, parallel)
		removed += len(ids)
		if err != nil && ctx.Err() != nil {
			return removed, err
		}
		if err != nil {
			time.Sleep(time.Second)
		}
	}
}

// RemoveSandboxes stops and removes the given sandboxes, n at a time.
func (c *Client) RemoveSandboxes(ctx context.Context, ids []string, parallel int) error {
	sem := make(chan struct{}, max(parallel, 1))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// NotFound: removed meanwhile, by a request a stopped agent
			// left in flight.
			if _, err := c.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && status.Code(err) != codes.NotFound {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop sandbox %s: %w", id, err))
				mu.Unlock()
				return
			}
			if _, err := c.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && status.Code(err) != codes.NotFound {
				mu.Lock()
				errs = append(errs, fmt.Errorf("remove sandbox %s: %w", id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// PodStopped reports whether the pod with uid has no running container and
// no ready sandbox left: what "its containers are gone" means here, since
// kubelets remove dead containers only later, in garbage collection.
func (c *Client) PodStopped(ctx context.Context, uid string) (bool, error) {
	sel := map[string]string{LabelPodUID: uid}
	cs, err := c.RT.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: sel,
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return false, err
	}
	if len(cs.Containers) > 0 {
		return false, nil
	}
	ss, err := c.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: sel,
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		return false, err
	}
	return len(ss.Items) == 0, nil
}

// Container is what the benchmark needs to know of one container.
type Container struct {
	ID         string
	State      runtimeapi.ContainerState
	FinishedAt int64 // unix nanoseconds; 0 while it runs
	Pid        int   // from the runtime's verbose info; 0 if unknown
}

// PodContainer finds the newest container called name in the pod with uid.
func (c *Client) PodContainer(ctx context.Context, uid, name string) (Container, error) {
	cs, err := c.RT.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{LabelPodUID: uid, LabelContainerName: name},
	}})
	if err != nil {
		return Container{}, err
	}
	var newest *runtimeapi.Container
	for _, ct := range cs.Containers {
		if newest == nil || ct.CreatedAt > newest.CreatedAt {
			newest = ct
		}
	}
	if newest == nil {
		return Container{}, fmt.Errorf("no container %q in pod %s", name, uid)
	}
	st, err := c.RT.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: newest.Id, Verbose: true})
	if err != nil {
		return Container{}, err
	}
	out := Container{ID: newest.Id, State: st.Status.State, FinishedAt: st.Status.FinishedAt}
	// containerd puts {"pid": N, ...} under "info".
	var info struct {
		Pid int `json:"pid"`
	}
	if raw, ok := st.Info["info"]; ok && json.Unmarshal([]byte(raw), &info) == nil {
		out.Pid = info.Pid
	}
	return out, nil
}

// BusyPods returns the pod UIDs that have a running container or a ready
// sandbox: two list calls, whatever the number of pods.
func (c *Client) BusyPods(ctx context.Context) (map[string]bool, error) {
	busy := map[string]bool{}
	cs, err := c.RT.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return nil, err
	}
	for _, ct := range cs.Containers {
		busy[ct.Labels[LabelPodUID]] = true
	}
	ss, err := c.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		return nil, err
	}
	for _, s := range ss.Items {
		busy[s.Labels[LabelPodUID]] = true
	}
	return busy, nil
}
