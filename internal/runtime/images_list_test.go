package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNodeImages(t *testing.T) {
	img := func(id string, size uint64, digests, tags []string) *runtimeapi.Image {
		return &runtimeapi.Image{Id: id, Size: size, RepoDigests: digests, RepoTags: tags}
	}
	var many []*runtimeapi.Image
	for i := range 60 {
		many = append(many, img(fmt.Sprintf("sha256:%02d", i), uint64(i), nil, []string{fmt.Sprintf("img:%d", i)}))
	}
	tests := []struct {
		name string
		in   []*runtimeapi.Image
		want []v1.ContainerImage
	}{
		{name: "none", in: nil, want: []v1.ContainerImage{}},
		{
			name: "largest first, ties by ID descending, digests before tags",
			in: []*runtimeapi.Image{
				img("sha256:a", 10, []string{"busybox@sha256:1"}, []string{"busybox:1.36"}),
				img("sha256:b", 30, nil, []string{"nginx:1.25"}),
				img("sha256:c", 10, nil, []string{"pause:3.9"}),
			},
			want: []v1.ContainerImage{
				{Names: []string{"nginx:1.25"}, SizeBytes: 30},
				{Names: []string{"pause:3.9"}, SizeBytes: 10},
				{Names: []string{"busybox@sha256:1", "busybox:1.36"}, SizeBytes: 10},
			},
		},
		{
			name: "at most five names",
			in:   []*runtimeapi.Image{img("sha256:a", 1, []string{"d1", "d2", "d3"}, []string{"t1", "t2", "t3"})},
			want: []v1.ContainerImage{{Names: []string{"d1", "d2", "d3", "t1", "t2"}, SizeBytes: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeImages(tt.in); !apiequality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("nodeImages:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	got := nodeImages(many)
	if len(got) != 50 || got[0].SizeBytes != 59 || got[49].SizeBytes != 10 {
		t.Errorf("60 images: got %d, first %d, last %d; want the 50 largest", len(got), got[0].SizeBytes, got[49].SizeBytes)
	}
}

func TestListImages(t *testing.T) {
	e := newEnv(t)
	e.is.SetFakeImageSize(100) // for the images made next
	e.is.SetFakeImages([]string{"busybox:1.0", "pause:3.9"})
	got, err := e.m.ListImages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].SizeBytes != 100 || len(got[0].Names) == 0 {
		t.Errorf("ListImages = %+v", got)
	}

	e.is.InjectError("ListImages", errors.New("boom"))
	if _, err := e.m.ListImages(context.Background()); err == nil {
		t.Error("no error from a failing image service")
	}
}
