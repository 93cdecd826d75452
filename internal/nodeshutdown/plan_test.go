package nodeshutdown

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

type period = kubeletconfig.ShutdownGracePeriodByPodPriority

func pp(priority int32, seconds int64) period {
	return period{Priority: priority, ShutdownGracePeriodSeconds: seconds}
}

func TestPeriods(t *testing.T) {
	for _, tc := range []struct {
		name            string
		grace, critical time.Duration
		byPriority      []period
		want            []period
	}{
		{"off", 0, 0, nil, nil},
		{"grace only: all for regular pods", 30 * time.Second, 0, nil, []period{pp(0, 30), pp(2000000000, 0)}},
		{"grace split with critical pods", 30 * time.Second, 10 * time.Second, nil, []period{pp(0, 20), pp(2000000000, 10)}},
		{"critical above grace: off", 10 * time.Second, 20 * time.Second, nil, nil},
		{"by priority, sorted", 0, 0, []period{pp(100000, 5), pp(0, 10), pp(-10, 3)}, []period{pp(-10, 3), pp(0, 10), pp(100000, 5)}},
	} {
		if got := Periods(tc.grace, tc.critical, tc.byPriority); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Periods = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := Requested([]period{pp(0, 20), pp(2000000000, 10)}); got != 30*time.Second {
		t.Errorf("Requested = %v, want 30s", got)
	}
}

func TestGroups(t *testing.T) {
	pod := func(name string, priority *int32, grace *int64) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PodSpec{Priority: priority, TerminationGracePeriodSeconds: grace}}
	}
	periods := []period{pp(1, 10), pp(100, 20), pp(1000, 30)}
	pods := []*v1.Pod{
		pod("none", nil, nil),                               // priority 0: below every group → the lowest
		pod("low", ptr.To[int32](1), nil),                   // on a boundary → that group
		pod("mid", ptr.To[int32](99), nil),                  // between → the lower group
		pod("high", ptr.To[int32](100), nil),                // boundary
		pod("top", ptr.To[int32](5000), nil),                // above every group → the highest
		pod("short", ptr.To[int32](1000), ptr.To[int64](3)), // own grace shorter
		pod("long", ptr.To[int32](1000), ptr.To[int64](60)), // own grace longer
	}
	groups := Groups(periods, pods)
	var got [][]string
	for _, g := range groups {
		var names []string
		for _, p := range g.Pods {
			names = append(names, p.Name)
		}
		got = append(got, names)
	}
	want := [][]string{{"none", "low", "mid"}, {"high"}, {"top", "short", "long"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	if g := groups[2]; g.Budget != 30*time.Second || g.GracePeriod(pods[5]) != 3 || g.GracePeriod(pods[6]) != 30 || g.GracePeriod(pods[4]) != 30 {
		t.Errorf("top group budget %v, grace periods %d %d %d; want 30s, 3, 30, 30", g.Budget, g.GracePeriod(pods[5]), g.GracePeriod(pods[6]), g.GracePeriod(pods[4]))
	}
	if Groups(nil, pods) != nil {
		t.Error("no periods: want no groups")
	}
}
