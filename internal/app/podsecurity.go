package app

import (
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/admission"
	"github.com/berth-dev/berth/internal/source"
)

// podSecurity is berth's Pod Security Standards check at the node: the
// level static pods must meet (--static-pod-security) and the floor for
// API pods (--pod-security-floor); nil where not set.
type podSecurity struct {
	static, floor *admission.PodSecurity
}

func newPodSecurity(opts Options) (podSecurity, error) {
	var ps podSecurity
	for _, s := range []struct {
		flag, value string
		check       **admission.PodSecurity
	}{
		{"static-pod-security", opts.StaticPodSecurity, &ps.static},
		{"pod-security-floor", opts.PodSecurityFloor, &ps.floor},
	} {
		if s.value == "" {
			continue
		}
		lv, err := admission.ParsePodSecurityLevel(s.value)
		if err != nil {
			return ps, fmt.Errorf("--%s: %w", s.flag, err)
		}
		if *s.check, err = admission.NewPodSecurity(lv); err != nil {
			return ps, fmt.Errorf("--%s: %w", s.flag, err)
		}
	}
	return ps, nil
}

// Admit checks a new pod against the level for its kind: static pods
// against --static-pod-security, the others against --pod-security-floor.
func (ps podSecurity) Admit(pod *v1.Pod) admission.Result {
	check := ps.floor
	if source.IsStatic(pod) {
		check = ps.static
	}
	if check == nil {
		return admission.Result{Admit: true}
	}
	return check.Admit(pod)
}

// screen is the static pod source's Screen: why a static pod must not
// run, or nil.
func (ps podSecurity) screen(pod *v1.Pod) error {
	if r := ps.static.Admit(pod); !r.Admit {
		return errors.New(r.Message)
	}
	return nil
}

// refusedManifest reports a static pod manifest the node refused: a log
// line and a warning event on the Node. When a refused pod runs nowhere
// (kept is nil), admission also rejects it, which fails its status (the
// mirror pod's) with the same message.
func refusedManifest(logger klog.Logger, recorder record.EventRecorder, nodeName string) func(path string, refused, kept *v1.Pod, err error) {
	node := &v1.ObjectReference{Kind: "Node", Name: nodeName, UID: types.UID(nodeName)}
	return func(path string, refused, kept *v1.Pod, err error) {
		if kept != nil {
			logger.Info("Static pod manifest refused; the previous version keeps running",
				"path", path, "pod", klog.KObj(refused), "podUID", refused.UID, "runningUID", kept.UID, "reason", admission.ReasonPodSecurity, "message", err.Error())
			recorder.Eventf(node, v1.EventTypeWarning, admission.ReasonPodSecurity,
				"Static pod %s/%s from %s refused, the previous version keeps running: %v", refused.Namespace, refused.Name, path, err)
			return
		}
		logger.Info("Static pod manifest refused", "path", path, "pod", klog.KObj(refused), "podUID", refused.UID,
			"reason", admission.ReasonPodSecurity, "message", err.Error())
		recorder.Eventf(node, v1.EventTypeWarning, admission.ReasonPodSecurity,
			"Static pod %s/%s from %s refused: %v", refused.Namespace, refused.Name, path, err)
	}
}
