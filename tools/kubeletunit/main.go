// Command kubeletunit plays the service manager for kubeadm's kubelet unit
// where there is no systemd: it reads the unit file and its drop-ins
// (hack/kubeadm/kubelet.service and 10-kubeadm.conf), and runs ExecStart=
// with the variables of Environment= and EnvironmentFile= expanded, reading
// the environment files again at every start and restarting the process
// after RestartSec= whenever it exits (Restart=always), as systemd does.
// kubeadm writes /var/lib/kubelet/config.yaml and kubeadm-flags.env after it
// asked for the kubelet to start; until then the kubelet crash-loops, as on
// a real node.
//
//	kubeletunit -unit kubelet.service -unit 10-kubeadm.conf \
//	    -exec /usr/bin/kubelet=/path/to/berth [-log FILE] [-pid-file FILE]
//
// SIGTERM or SIGINT stops the kubelet (SIGTERM, SIGKILL after 90 s, systemd's
// TimeoutStopSec) and then kubeletunit. The kubelet dies with kubeletunit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var units, execs listFlag
	flag.Var(&units, "unit", "the unit file, then its drop-ins in order (repeat)")
	flag.Var(&execs, "exec", "OLD=NEW: run NEW where ExecStart= names OLD (repeat)")
	logPath := flag.String("log", "", "append the kubelet's output and kubeletunit's notes here (default stderr)")
	pidFile := flag.String("pid-file", "", "write the running kubelet's pid here")
	flag.Parse()
	if len(units) == 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: kubeletunit -unit FILE [-unit DROPIN]... [-exec OLD=NEW]... [-log FILE] [-pid-file FILE]")
		os.Exit(2)
	}
	if err := run(units, execs, *logPath, *pidFile); err != nil {
		fmt.Fprintf(os.Stderr, "kubeletunit: %v\n", err)
		os.Exit(1)
	}
}

func run(units, execs []string, logPath, pidFile string) error {
	u := newUnit()
	for _, path := range units {
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := u.apply(path, string(text)); err != nil {
			return err
		}
	}
	replace := map[string]string{}
	for _, e := range execs {
		old, repl, ok := strings.Cut(e, "=")
		if !ok {
			return fmt.Errorf("-exec %q is not OLD=NEW", e)
		}
		replace[old] = repl
	}
	out := io.Writer(os.Stderr)
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s := &service{unit: u, replace: replace, out: out, pidFile: pidFile}
	return s.loop(ctx)
}

type service struct {
	unit    *unit
	replace map[string]string
	out     io.Writer
	pidFile string
}

func (s *service) note(format string, args ...any) {
	fmt.Fprintf(s.out, "%s kubeletunit: %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// loop starts the kubelet until ctx ends or the unit says not to restart.
func (s *service) loop(ctx context.Context) error {
	for {
		failed, err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.note("start failed: %v", err)
		}
		if !s.unit.restarts(failed) {
			s.note("not restarting (Restart=%s)", s.unit.restart)
			return nil
		}
		s.note("restarting in %s (RestartSec)", s.unit.restartSec)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.unit.restartSec):
		}
	}
}

// runOnce starts the process once and waits for it to end, or stops it when
// ctx ends. failed is true unless it exited with status 0.
func (s *service) runOnce(ctx context.Context) (failed bool, err error) {
	var fileEnv []map[string]string
	for _, f := range s.unit.envFiles {
		text, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) && f.optional {
			continue
		}
		if err != nil {
			return true, fmt.Errorf("EnvironmentFile: %w", err)
		}
		env, err := parseEnvFile(string(text))
		if err != nil {
			return true, fmt.Errorf("EnvironmentFile %s: %w", f.path, err)
		}
		fileEnv = append(fileEnv, env)
	}
	argv, err := s.unit.command(fileEnv)
	if err != nil {
		return true, err
	}
	if repl, ok := s.replace[argv[0]]; ok {
		argv[0] = repl
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return true, err
	}
	s.note("started %s (pid %d)", strings.Join(argv, " "), cmd.Process.Pid)
	if s.pidFile != "" {
		if err := os.WriteFile(s.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			s.note("write pid file: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		s.note("kubelet exited: %v", exitText(err))
		return err != nil, nil
	case <-ctx.Done():
	}
	s.note("stopping the kubelet (SIGTERM)")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		s.note("kubelet exited: %v", exitText(err))
	case <-time.After(90 * time.Second):
		s.note("kubelet ignored SIGTERM for 90s; killing it")
		_ = cmd.Process.Kill()
		<-done
	}
	if s.pidFile != "" {
		_ = os.Remove(s.pidFile)
	}
	return false, nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}
