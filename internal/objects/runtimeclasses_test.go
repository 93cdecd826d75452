package objects

import (
	"context"
	"testing"

	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func TestRuntimeClasses(t *testing.T) {
	client := fake.NewClientset(&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "sandboxed"}, Handler: "test-handler"})
	r := NewRuntimeClasses(client)
	name := func(s string) *string { return &s }
	if _, err := r.LookupRuntimeHandler(name("sandboxed")); err == nil || apierrors.IsNotFound(err) {
		t.Errorf("before the first list: err %v, want an error other than NotFound", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced) {
		t.Fatal("never synced")
	}
	for _, tt := range []struct {
		class        *string
		want         string
		wantNotFound bool
	}{
		{class: nil, want: ""},
		{class: name(""), want: ""},
		{class: name("sandboxed"), want: "test-handler"},
		{class: name("missing"), wantNotFound: true},
	} {
		got, err := r.LookupRuntimeHandler(tt.class)
		if tt.wantNotFound {
			if !apierrors.IsNotFound(err) || err.Error() != `runtimeclass.node.k8s.io "missing" not found` {
				t.Errorf("LookupRuntimeHandler(missing) = %q, %v; want upstream's NotFound", got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LookupRuntimeHandler(%v) = %q, %v; want %q", tt.class, got, err, tt.want)
		}
	}
}
