package oom

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// kmsgRecord is one kernel log record.
type kmsgRecord struct {
	seq     uint64
	time    time.Time
	message string
}

// parseRecord parses one /dev/kmsg record, "PRIO,SEQ,USEC,FLAGS;MESSAGE"
// followed by continuation lines, with boot as the time of boot.
func parseRecord(b []byte, boot time.Time) (kmsgRecord, bool) {
	s := string(b)
	meta, msg, ok := strings.Cut(s, ";")
	if !ok {
		return kmsgRecord{}, false
	}
	fields := strings.Split(meta, ",")
	if len(fields) < 3 {
		return kmsgRecord{}, false
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return kmsgRecord{}, false
	}
	usec, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil {
		return kmsgRecord{}, false
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // continuation lines (" KEY=value") carry nothing we read
	}
	return kmsgRecord{seq: seq, time: boot.Add(time.Duration(usec) * time.Microsecond), message: msg}, true
}

// Kill is one OOM kill found in the kernel log.
type Kill struct {
	Pid         int
	ProcessName string
	Time        time.Time
	// Cgroup is the killed task's memory cgroup; Victim the cgroup whose
	// limit was hit, "/" for the whole machine.
	Cgroup, Victim string
}

// System reports whether the global OOM killer (not a cgroup limit) made
// the kill, what upstream reports as SystemOOM.
func (k Kill) System() bool { return k.Victim == "/" }

var (
	oomStart = regexp.MustCompile(`invoked oom-killer:`)
	// Since Linux 5.0, one line names both cgroups and the task.
	oomLine = regexp.MustCompile(`oom-kill:constraint=(.*),nodemask=(.*),cpuset=(.*),mems_allowed=(.*),oom_memcg=(.*),task_memcg=(.*),task=(.*),pid=(.*),uid=(.*)`)
	// Before 5.0 the cgroups had a line of their own.
	oomLegacyCgroups = regexp.MustCompile(`Task in (.*) killed as a result of limit of (.*)`)
	oomKilled        = regexp.MustCompile(`Killed process ([0-9]+) \((.+)\)`)
)

// killParser assembles OOM kills from kernel log messages: a kill starts
// with "invoked oom-killer:" and ends with the line naming the killed
// task, as upstream's (cAdvisor's) parser reads them. A global OOM's
// oom-kill line says global_oom instead of oom_memcg=..., so its cgroups
// stay "/" and the "Killed process" line ends it.
type killParser struct {
	cur *Kill
}

// feed takes the next message and returns a completed kill, if any.
func (p *killParser) feed(r kmsgRecord) (Kill, bool) {
	if p.cur == nil {
		if oomStart.MatchString(r.message) {
			p.cur = &Kill{Cgroup: "/", Victim: "/", Time: r.time}
		}
		return Kill{}, false
	}
	k := p.cur
	if m := oomLine.FindStringSubmatch(r.message); m != nil {
		k.Victim, k.Cgroup, k.ProcessName = m[5], m[6], m[7]
		k.Pid, _ = strconv.Atoi(m[8])
		k.Time = r.time
		p.cur = nil
		return *k, true
	}
	if m := oomLegacyCgroups.FindStringSubmatch(r.message); m != nil {
		k.Cgroup, k.Victim = cleanCgroup(m[1]), cleanCgroup(m[2])
	}
	if m := oomKilled.FindStringSubmatch(r.message); m != nil {
		k.Pid, _ = strconv.Atoi(m[1])
		k.ProcessName = m[2]
		k.Time = r.time
		p.cur = nil
		return *k, true
	}
	return Kill{}, false
}

// cleanCgroup makes a cgroup name absolute, as upstream's path.Join("/", ...).
func cleanCgroup(s string) string {
	if !strings.HasPrefix(s, "/") {
		s = "/" + s
	}
	return s
}
