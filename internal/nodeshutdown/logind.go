package nodeshutdown

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"
)

// logind's and systemd's D-Bus names, as upstream uses them.
const (
	logindService   = "org.freedesktop.login1"
	logindObject    = dbus.ObjectPath("/org/freedesktop/login1")
	logindInterface = "org.freedesktop.login1.Manager"
	systemdService  = "org.freedesktop.systemd1"
	systemdObject   = dbus.ObjectPath("/org/freedesktop/systemd1")

	// logindConfDir and logindConfFile are where upstream asks logind for
	// a longer InhibitDelayMaxSec.
	logindConfDir  = "/etc/systemd/logind.conf.d"
	logindConfFile = "99-kubelet.conf"
)

// Logind is the part of systemd-logind the manager uses; dbusLogind is
// the real one.
type Logind interface {
	// InhibitDelay is logind's InhibitDelayMaxUSec: how long a delay lock
	// may hold a shutdown back.
	InhibitDelay() (time.Duration, error)
	// OverrideInhibitDelay asks logind for a longer delay (a logind.conf
	// drop-in, then a reload).
	OverrideInhibitDelay(d time.Duration) error
	// Inhibit takes a delay lock on shutdown; closing it releases it.
	Inhibit() (*os.File, error)
	// Shutdowns delivers PrepareForShutdown's argument (true: the shutdown
	// starts, false: it was cancelled); closed when the bus goes away.
	Shutdowns() (<-chan bool, error)
	Close() error
}

// dbusLogind talks to logind on the system bus (DBUS_SYSTEM_BUS_ADDRESS,
// else the standard socket).
type dbusLogind struct {
	conn *dbus.Conn
}

// ConnectLogind connects to the system bus.
func ConnectLogind() (Logind, error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("connect to the system D-Bus: %w", err)
	}
	return &dbusLogind{conn: conn}, nil
}

func (l *dbusLogind) logind() dbus.BusObject { return l.conn.Object(logindService, logindObject) }

func (l *dbusLogind) InhibitDelay() (time.Duration, error) {
	v, err := l.logind().GetProperty(logindInterface + ".InhibitDelayMaxUSec")
	if err != nil {
		return 0, fmt.Errorf("failed reading InhibitDelayMaxUSec property from logind: %w", err)
	}
	usec, ok := v.Value().(uint64)
	if !ok {
		return 0, errors.New("InhibitDelayMaxUSec from logind is not a uint64 as expected")
	}
	return time.Duration(usec) * time.Microsecond, nil
}

func (l *dbusLogind) OverrideInhibitDelay(d time.Duration) error {
	if err := os.MkdirAll(logindConfDir, 0o755); err != nil {
		return fmt.Errorf("failed creating %v directory: %w", logindConfDir, err)
	}
	conf := fmt.Sprintf("# Kubelet logind override\n[Login]\nInhibitDelayMaxSec=%.0f\n", d.Seconds())
	path := filepath.Join(logindConfDir, logindConfFile)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("failed writing logind shutdown inhibit override file %v: %w", path, err)
	}
	// SIGHUP makes logind read its configuration again.
	call := l.conn.Object(systemdService, systemdObject).Call("org.freedesktop.systemd1.Manager.KillUnit", 0, "systemd-logind.service", "all", int32(1))
	if call.Err != nil {
		return fmt.Errorf("unable to reload logind conf: %w", call.Err)
	}
	return nil
}

func (l *dbusLogind) Inhibit() (*os.File, error) {
	call := l.logind().Call(logindInterface+".Inhibit", 0, "shutdown", "kubelet", "Kubelet needs time to handle node shutdown", "delay")
	if call.Err != nil {
		return nil, fmt.Errorf("failed creating systemd inhibitor: %w", call.Err)
	}
	var fd dbus.UnixFD
	if err := call.Store(&fd); err != nil {
		return nil, fmt.Errorf("failed storing inhibit lock file descriptor: %w", err)
	}
	return os.NewFile(uintptr(fd), "logind-inhibitor"), nil
}

func (l *dbusLogind) Shutdowns() (<-chan bool, error) {
	if err := l.conn.AddMatchSignal(dbus.WithMatchInterface(logindInterface), dbus.WithMatchMember("PrepareForShutdown"), dbus.WithMatchObjectPath(logindObject)); err != nil {
		return nil, err
	}
	signals := make(chan *dbus.Signal, 1)
	l.conn.Signal(signals)
	out := make(chan bool, 1)
	// Ends when the connection closes (godbus closes signals then).
	go func() {
		defer close(out)
		for s := range signals {
			if s == nil || s.Name != logindInterface+".PrepareForShutdown" || len(s.Body) == 0 {
				continue
			}
			if v, ok := s.Body[0].(bool); ok {
				out <- v
			}
		}
	}()
	return out, nil
}

func (l *dbusLogind) Close() error { return l.conn.Close() }
