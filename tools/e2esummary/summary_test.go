package main

import (
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	const reportJSON = `[{"SuiteDescription": "Kubernetes e2e suite", "SpecReports": [
	{"LeafNodeType": "SynchronizedBeforeSuite", "State": "passed"},
	{"ContainerHierarchyTexts": ["[sig-node] Pods"], "LeafNodeType": "It",
	 "LeafNodeText": "should be submitted and removed [NodeConformance] [Conformance]", "State": "passed", "RunTime": 4000000000},
	{"ContainerHierarchyTexts": ["[sig-node] Sysctls", ""], "LeafNodeType": "It",
	 "LeafNodeText": "should not launch unsafe, but not explicitly enabled sysctls on the node", "State": "failed",
	 "Failure": {"Message": "\n  expected pod status reason SysctlForbidden, got Running after 300 s\n  at x\n",
	  "Location": {"FileName": "/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/test/e2e/common/node/sysctl.go", "LineNumber": 187}}},
	{"ContainerHierarchyTexts": ["[sig-node] Probing container"], "LeafNodeType": "It",
	 "LeafNodeText": "should be restarted by liveness probe", "State": "timedout",
	 "Failure": {"Message": "A spec timeout occurred"}},
	{"ContainerHierarchyTexts": ["[sig-node] AppArmor"], "LeafNodeType": "It",
	 "LeafNodeText": "should enforce a profile", "State": "skipped",
	 "Failure": {"Message": "Only supported for node OS distro [gci ubuntu] (not debian)"}},
	{"ContainerHierarchyTexts": ["[sig-storage] CSI"], "LeafNodeType": "It",
	 "LeafNodeText": "is not in the focus", "State": "skipped"},
	{"LeafNodeType": "ReportAfterSuite", "LeafNodeText": "Kubernetes e2e suite report", "State": "passed"}
	]}]`
	reports, err := parse(strings.NewReader(reportJSON))
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(reports)

	if got, want := s.CountLine(), "1 passed, 2 failed, 1 skipped"; got != want {
		t.Errorf("CountLine() = %q, want %q", got, want)
	}
	if s.NotSelected != 1 {
		t.Errorf("NotSelected = %d, want 1", s.NotSelected)
	}
	want := Result{
		Name:   "[sig-node] Sysctls should not launch unsafe, but not explicitly enabled sysctls on the node",
		State:  "failed",
		Reason: "expected pod status reason SysctlForbidden, got Running after 300 s",
		Where:  "test/e2e/common/node/sysctl.go:187",
	}
	if s.Failed[1] != want {
		t.Errorf("Failed[1] = %+v, want %+v", s.Failed[1], want)
	}
	if s.Failed[0].State != "timedout" || s.Failed[0].Reason != "A spec timeout occurred" {
		t.Errorf("Failed[0] = %+v, want the timed-out probe spec", s.Failed[0])
	}
	if s.Skipped[0].Reason != "Only supported for node OS distro [gci ubuntu] (not debian)" {
		t.Errorf("Skipped[0].Reason = %q", s.Skipped[0].Reason)
	}
	if s.Passed[0].RunTime != 4*time.Second {
		t.Errorf("Passed[0].RunTime = %v, want 4s", s.Passed[0].RunTime)
	}
}

func TestSummarizeFailedSuiteNode(t *testing.T) {
	reports, err := parse(strings.NewReader(`[{"SpecReports": [
	{"LeafNodeType": "SynchronizedBeforeSuite", "State": "failed", "Failure": {"Message": "node not ready"}},
	{"ContainerHierarchyTexts": ["a"], "LeafNodeType": "It", "LeafNodeText": "b", "State": "skipped"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(reports)
	if len(s.Failed) != 1 || s.Failed[0].Name != "[SynchronizedBeforeSuite]" || s.Failed[0].Reason != "node not ready" {
		t.Errorf("Failed = %+v, want the failed suite node", s.Failed)
	}
}

func TestReasonLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"one", "one"},
		{"\n\n  a first line that is long enough to say on its own what went wrong \nsecond", "a first line that is long enough to say on its own what went wrong"},
		{"Expected\n    <string>: \nto equal\n    <string>: DONE\nIn [It] at: x.go:1", "Expected <string>: to equal <string>: DONE"},
		{strings.Repeat("x", 400), strings.Repeat("x", 300) + "…"},
	} {
		if got := reasonLine(tc.in); got != tc.want {
			t.Errorf("reasonLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b strings.Builder
	s := Summary{
		Passed:      []Result{{Name: "p", RunTime: 2 * time.Second}},
		Failed:      []Result{{Name: "f", State: "failed", Reason: "why", Where: "x.go:1"}},
		NotSelected: 7,
	}
	if err := writeMarkdown(&b, "berth", s); err != nil {
		t.Fatal(err)
	}
	want := "# berth\n\n1 passed, 1 failed, 0 skipped (7 specs not selected)\n" +
		"\n## Failed (1)\n\n- f\n  - failed: why (x.go:1)\n" +
		"\n## Passed (1)\n\n- p (2s)\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
