package prober

import (
	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/container"
)

// expandStatic expands $(NAME) in an exec probe's command with the
// container's literal env values only (upstream's
// ExpandContainerCommandOnlyStatic): values from secrets, config maps or
// the downward API are not known here. The rules are container.Expand's.
func expandStatic(cmd []string, env []v1.EnvVar) []string {
	if len(cmd) == 0 || len(env) == 0 {
		return cmd
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		if e.ValueFrom == nil {
			vars[e.Name] = e.Value
		}
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = container.Expand(s, container.MapLookup(vars))
	}
	return out
}
