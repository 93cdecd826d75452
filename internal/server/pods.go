package server

import (
	"encoding/json"
	"net/http"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/internal/container"
)

// podsHandler serves the pods berth manages, with their status, as a
// v1 PodList.
func podsHandler(pods PodLister) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writePodList(w, r, pods.Pods())
	})
}

// runningPodsHandler serves the pods as the runtime sees them: each pod
// with a ready sandbox or a running container, with only its running
// containers (name and image), as upstream's /runningpods/.
func runningPodsHandler(rt RuntimePods) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		all, err := rt.ListPods(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var pods []*v1.Pod
		for _, st := range all {
			if st.IsRunning() {
				pods = append(pods, runtimePod(st))
			}
		}
		sort.Slice(pods, func(i, j int) bool {
			if pods[i].Namespace != pods[j].Namespace {
				return pods[i].Namespace < pods[j].Namespace
			}
			return pods[i].Name < pods[j].Name
		})
		writePodList(w, r, pods)
	})
}

// runtimePod is upstream's kubecontainer.Pod.ToAPIPod.
func runtimePod(st *container.PodStatus) *v1.Pod {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: st.UID, Name: st.Name, Namespace: st.Namespace}}
	for _, c := range st.RunningContainers() {
		pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: c.Name, Image: c.Image})
	}
	return pod
}

func writePodList(w http.ResponseWriter, r *http.Request, pods []*v1.Pod) {
	list := v1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}, Items: []v1.Pod{}}
	for _, p := range pods {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, r, &list)
}

// writeJSON writes v as a JSON response; a failed write only means the
// client went away.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		klog.FromContext(r.Context()).V(2).Info("Writing response failed", "path", r.URL.Path, "err", err)
	}
}
