package config

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

func TestValidateShutdown(t *testing.T) {
	d := func(s time.Duration) metav1.Duration { return metav1.Duration{Duration: s} }
	byPriority := []kubeletconfig.ShutdownGracePeriodByPodPriority{{Priority: 0, ShutdownGracePeriodSeconds: 10}}
	for _, tc := range []struct {
		name string
		cfg  kubeletconfig.KubeletConfiguration
		want string
	}{
		{"off", kubeletconfig.KubeletConfiguration{}, ""},
		{"grace and critical", kubeletconfig.KubeletConfiguration{ShutdownGracePeriod: d(30 * time.Second), ShutdownGracePeriodCriticalPods: d(10 * time.Second)}, ""},
		{"by priority", kubeletconfig.KubeletConfiguration{ShutdownGracePeriodByPodPriority: byPriority}, ""},
		{"critical above grace", kubeletconfig.KubeletConfiguration{ShutdownGracePeriod: d(10 * time.Second), ShutdownGracePeriodCriticalPods: d(20 * time.Second)},
			"shutdownGracePeriodCriticalPods {20s} must be <= shutdownGracePeriod {10s}"}, // upstream prints the metav1.Duration so
		{"under a second", kubeletconfig.KubeletConfiguration{ShutdownGracePeriod: d(500 * time.Millisecond)}, "must be either zero or otherwise >= 1 sec"},
		{"both ways", kubeletconfig.KubeletConfiguration{ShutdownGracePeriod: d(30 * time.Second), ShutdownGracePeriodByPodPriority: byPriority},
			"Cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time"},
		{"gate off", kubeletconfig.KubeletConfiguration{ShutdownGracePeriod: d(30 * time.Second), FeatureGates: map[string]bool{"GracefulNodeShutdown": false}},
			"requires feature gate GracefulNodeShutdown"},
	} {
		var got []string
		for _, err := range validateShutdown(&tc.cfg) {
			got = append(got, err.Error())
		}
		if joined := strings.Join(got, "\n"); (tc.want == "") != (joined == "") || !strings.Contains(joined, tc.want) {
			t.Errorf("%s: errors %q, want %q", tc.name, joined, tc.want)
		}
	}
	periods := shutdownPeriods(&kubeletconfig.KubeletConfiguration{ShutdownGracePeriod: d(30 * time.Second), ShutdownGracePeriodCriticalPods: d(10 * time.Second)})
	if len(periods) != 2 || periods[0].ShutdownGracePeriodSeconds != 20 || periods[1].ShutdownGracePeriodSeconds != 10 {
		t.Errorf("periods %v, want 20 s for regular pods, 10 s for critical ones", periods)
	}
}
