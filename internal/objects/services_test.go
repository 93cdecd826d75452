package objects

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func TestServices(t *testing.T) {
	svc := func(ns, name string) *v1.Service {
		return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{ClusterIP: "10.0.0.1"}}
	}
	client := fake.NewClientset(svc("default", "kubernetes"), svc("a", "one"), svc("a", "two"), svc("b", "three"))
	s := NewServices(client)
	if s.HasSynced() {
		t.Fatal("synced before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !cache.WaitForCacheSync(ctx.Done(), s.HasSynced) {
		t.Fatal("never synced")
	}
	for ns, want := range map[string]int{"default": 1, "a": 2, "b": 1, "c": 0} {
		got, err := s.List(ns)
		if err != nil || len(got) != want {
			t.Errorf("List(%s) = %d services, %v; want %d", ns, len(got), err, want)
		}
		for _, x := range got {
			if x.Namespace != ns {
				t.Errorf("List(%s) returned %s/%s", ns, x.Namespace, x.Name)
			}
		}
	}
}
