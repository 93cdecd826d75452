package main

import (
	"bytes"
	"strings"
	"testing"
)

// Only paths that end before app.Run: those need a container runtime.
func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"--help"}, wantStatus: 0, wantStderr: "Usage: berth [flags]"},
		{name: "version", args: []string{"--version"}, wantStatus: 0, wantStdout: "Kubernetes v1.37.2\n"},
		{name: "unknown flag", args: []string{"--bogus"}, wantStatus: 2, wantStderr: "berth: unknown flag: --bogus\nRun 'berth --help' for usage.\n"},
		{name: "missing config file", args: []string{"--config", "/nonexistent/berth.yaml"}, wantStatus: 1, wantStderr: "berth: read config file: open /nonexistent/berth.yaml"},
		{name: "invalid value", args: []string{"--cgroup-driver", "none"}, wantStatus: 1, wantStderr: `berth: invalid configuration: cgroupDriver (--cgroup-driver) "none" is not supported`},
		{name: "refused setting", args: []string{"--cpu-manager-policy", "static"}, wantStatus: 1, wantStderr: "berth: invalid configuration: cpuManagerPolicy (--cpu-manager-policy) is refused: berth does not enforce it yet"},
		{name: "upstream flag berth ignores", args: []string{"--lock-file=/run/lock", "--help"}, wantStatus: 0, wantStderr: "--lock-file"},
		{name: "flag upstream removed", args: []string{"--pod-infra-container-image=pause"}, wantStatus: 2, wantStderr: "berth: unknown flag: --pod-infra-container-image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, &stdout, &stderr); got != tt.wantStatus {
				t.Errorf("status = %d, want %d (stderr %q)", got, tt.wantStatus, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
