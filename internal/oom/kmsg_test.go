package oom

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/record"
)

// Records as this host's kernel (6.18) wrote them for a container over
// its limit, and as the global OOM killer and pre-5.0 kernels write them.
const (
	memcgKill = `6,100,12335783250,-;tail invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999
6,101,12335783400,-;CPU: 1 UID: 0 PID: 8077 Comm: tail
6,102,12335783520,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=3089,mems_allowed=0,oom_memcg=/kubepods/burstable/pod98,task_memcg=/kubepods/burstable/pod98/3089,task=tail,pid=8077,uid=0
3,103,12335783534,-;Memory cgroup out of memory: Killed process 8077 (tail) total-vm:17296kB, anon-rss:15104kB
`
	globalKill = `4,200,20000000000,-;stress invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0
6,201,20000000100,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice,task=stress,pid=999,uid=1000
3,202,20000000200,-;Out of memory: Killed process 999 (stress) total-vm:2097152kB, anon-rss:2000000kB
 SUBSYSTEM=memory
`
	legacyKill = `4,300,30000000000,-;java invoked oom-killer: gfp_mask=0x24000c0, order=0, oom_score_adj=0
6,301,30000000100,-;Task in /kubepods/pod1/abc killed as a result of limit of /kubepods/pod1/abc
3,302,30000000200,-;Memory cgroup out of memory: Kill process 77 (java) score 1000 or sacrifice child
3,303,30000000300,-;Killed process 77 (java) total-vm:100kB
`
)

// records splits a log into /dev/kmsg records, continuation lines kept
// with theirs.
func records(log string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if strings.HasPrefix(line, " ") && len(out) > 0 {
			out[len(out)-1] += line + "\n"
			continue
		}
		out = append(out, line+"\n")
	}
	return out
}

func TestKillParser(t *testing.T) {
	boot := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		log    string
		want   Kill
		system bool
	}{
		{"memcg", memcgKill, Kill{Pid: 8077, ProcessName: "tail", Cgroup: "/kubepods/burstable/pod98/3089", Victim: "/kubepods/burstable/pod98",
			Time: boot.Add(12335783520 * time.Microsecond)}, false},
		{"global", globalKill, Kill{Pid: 999, ProcessName: "stress", Cgroup: "/", Victim: "/",
			Time: boot.Add(20000000200 * time.Microsecond)}, true},
		{"legacy", legacyKill, Kill{Pid: 77, ProcessName: "java", Cgroup: "/kubepods/pod1/abc", Victim: "/kubepods/pod1/abc",
			Time: boot.Add(30000000300 * time.Microsecond)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p killParser
			var got []Kill
			for _, r := range records("6,1,5,-;unrelated\n" + tt.log) {
				rec, ok := parseRecord([]byte(r), boot)
				if !ok {
					t.Fatalf("record %q does not parse", r)
				}
				if k, done := p.feed(rec); done {
					got = append(got, k)
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("kills = %+v, want %+v", got, tt.want)
			}
			if got[0].System() != tt.system {
				t.Errorf("System() = %v, want %v", got[0].System(), tt.system)
			}
		})
	}
	if _, ok := parseRecord([]byte("no separator"), boot); ok {
		t.Error("a record without ';' parsed")
	}
}

// oneRecordReader returns one record per Read, as /dev/kmsg does.
type oneRecordReader struct{ recs []string }

func (r *oneRecordReader) Read(b []byte) (int, error) {
	if len(r.recs) == 0 {
		return 0, io.EOF
	}
	n := copy(b, r.recs[0])
	r.recs = r.recs[1:]
	return n, nil
}

func TestWatcherEvents(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	w := NewWatcher(Options{Recorder: rec, NodeName: "node-a", Boot: time.Unix(0, 0)})
	r := &oneRecordReader{recs: records(memcgKill + globalKill + legacyKill)}
	if err := w.read(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	close(rec.Events)
	var events []string
	for e := range rec.Events {
		events = append(events, e)
	}
	want := "Warning SystemOOM System OOM encountered, victim process: stress, pid: 999"
	if len(events) != 1 || events[0] != want {
		t.Errorf("events = %q, want only %q", events, want)
	}
}

// TestWatcherStops reads the host's kernel log and stops with its context.
func TestWatcherStops(t *testing.T) {
	w := NewWatcher(Options{Recorder: record.NewFakeRecorder(100), NodeName: "n"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	// Long enough to have read the old records and to wait for new ones.
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
