package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/container"
)

// A pod UID or name that is not one path segment removes nothing.
func TestRemovePodStaysUnderItsDirectories(t *testing.T) {
	for _, st := range []*container.PodStatus{
		{UID: "../victim", Name: "web", Namespace: "default"},
		{UID: "..", Name: "web", Namespace: "default"},
		{UID: "uid-1", Name: "../../victim", Namespace: "default"},
		{UID: "uid-1", Name: "web", Namespace: "a/b"},
	} {
		e := newEnv(t)
		victim := filepath.Join(e.m.node.rootDir, "victim")
		if err := os.MkdirAll(filepath.Join(victim, "etc-hosts"), 0o755); err != nil {
			t.Fatal(err)
		}
		err := e.m.RemovePod(context.Background(), st)
		if err == nil || !strings.Contains(err.Error(), "is not a single path segment") {
			t.Errorf("%+v: err = %v, want a refusal", st, err)
		}
		if _, err := os.Stat(filepath.Join(victim, "etc-hosts")); err != nil {
			t.Errorf("%+v: removed outside the pod's directory: %v", st, err)
		}
	}
}
