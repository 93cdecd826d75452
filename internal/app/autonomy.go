package app

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/internal/autonomy"
	"github.com/berth-dev/berth/internal/objects"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/volume"
)

// nodeAutonomy is the checkpoint of the node's API pods
// (--node-autonomy); nil without it.
type nodeAutonomy struct{ *autonomy.Manager }

// newNodeAutonomy opens the checkpoint when node autonomy is on, and
// removes any checkpoint when it is off: nothing of it (Secrets least of
// all) may outlive the setting.
func newNodeAutonomy(logger klog.Logger, opts Options, clients *apiClients, objs *objects.Manager, clk clock.Clock) (*nodeAutonomy, error) {
	if !opts.NodeAutonomy || clients == nil {
		if err := autonomy.RemoveAll(opts.RootDir); err != nil {
			return nil, fmt.Errorf("node autonomy is off: remove its checkpoint: %w", err)
		}
		return nil, nil
	}
	store, err := autonomy.Open(opts.RootDir)
	if err != nil {
		return nil, err
	}
	logger.Info("Node autonomy: checkpointing the node's API pods", "dir", opts.RootDir+"/"+autonomy.DirName, "apiWait", opts.NodeAutonomyWait)
	m := autonomy.New(autonomy.Options{
		Store:    store,
		Objects:  objs,
		Services: clients.services,
		Wait:     opts.NodeAutonomyWait,
		Clock:    clk,
	})
	clients.services.OnChange(m.ServicesChanged)
	return &nodeAutonomy{m}, nil
}

// objects is what volumes read ConfigMaps and Secrets from.
func (a *nodeAutonomy) objects(objs *objects.Manager) volume.Objects {
	if a == nil {
		return objs
	}
	return a.Objects(objs)
}

// envObjects is what containers' env reads ConfigMaps and Secrets from;
// nil standalone.
func (a *nodeAutonomy) envObjects(objs *objects.Manager, clients *apiClients) runtime.ObjectGetter {
	switch {
	case clients == nil:
		return nil
	case a == nil:
		return objs
	}
	return a.Objects(objs)
}

// services is what the service link variables come from.
func (a *nodeAutonomy) services(clients *apiClients) runtime.ServiceLister {
	if a == nil {
		return clients.serviceLister()
	}
	return a.Services(clients.services)
}

// tokens keeps the service-account tokens, or nothing.
func (a *nodeAutonomy) tokens() volume.TokenCheckpoint {
	if a == nil {
		return nil
	}
	return a.Manager
}

// subscriber is told of every change of a watched ConfigMap or Secret:
// the checkpoint (first: offline, the object is read from the watch from
// then on), and the volumes.
func (a *nodeAutonomy) subscriber(vols *volume.Manager) objects.Subscriber {
	if a == nil {
		return vols
	}
	return objectSubscribers{a.Manager, vols}
}

type objectSubscribers []objects.Subscriber

func (s objectSubscribers) ObjectChanged(kind, namespace, name string) {
	for _, sub := range s {
		sub.ObjectChanged(kind, namespace, name)
	}
}

// podSource wraps the API pod source: checkpointed, and run from the
// checkpoint while the API server cannot be reached. When the API lists
// after berth started offline, every pod's status is written again (the
// status syncer dropped the pods it could not find in the API).
func (a *nodeAutonomy) podSource(api *apiComponents) (run func(context.Context, chan<- []*v1.Pod), complete func() bool) {
	if a == nil {
		return api.pods.Run, nil
	}
	onListed := func() {
		for _, p := range api.podSet.Pods() {
			api.statusSyncer.Enqueue(p.UID)
		}
	}
	return a.RunPods(api.pods.Run, onListed), a.Complete
}

// statusChanged records terminal phases in the checkpoint.
func (a *nodeAutonomy) statusChanged(pod *v1.Pod, st *v1.PodStatus) {
	if a != nil {
		a.StatusChanged(pod, st)
	}
}

// run starts the checkpoint writer.
func (a *nodeAutonomy) run(ctx context.Context, run func(func())) {
	if a != nil {
		run(func() { a.Run(ctx) })
	}
}
