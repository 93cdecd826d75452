package compare

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// list builds a resource list from name/quantity pairs.
func list(kv ...string) v1.ResourceList {
	l := v1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func ctr(name string, requests, limits v1.ResourceList) v1.Container {
	return v1.Container{Name: name, Image: "busybox", Resources: v1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func pod(cs ...v1.Container) *v1.Pod {
	return &v1.Pod{Spec: v1.PodSpec{Containers: cs}}
}

func withInit(p *v1.Pod, cs ...v1.Container) *v1.Pod {
	p.Spec.InitContainers = append(p.Spec.InitContainers, cs...)
	return p
}

func withPodLevel(p *v1.Pod, requests, limits v1.ResourceList) *v1.Pod {
	p.Spec.Resources = &v1.ResourceRequirements{Requests: requests, Limits: limits}
	return p
}

// diffLines lists the lines of got and want that the other lacks: enough
// to name the fields that differ in two indented JSON documents.
func diffLines(got, want string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	g, w := count(got), count(want)
	var b strings.Builder
	for _, l := range strings.Split(got, "\n") {
		if g[l] > w[l] {
			fmt.Fprintf(&b, "berth:    %s\n", l)
			g[l]--
		}
	}
	g = count(got)
	for _, l := range strings.Split(want, "\n") {
		if w[l] > g[l] {
			fmt.Fprintf(&b, "upstream: %s\n", l)
			w[l]--
		}
	}
	return b.String()
}
