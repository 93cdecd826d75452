// Package kerneltunables checks and sets the kernel settings the kubelet
// guards (upstream setupKernelTunables in pkg/kubelet/cm): overcommit and
// OOM behaviour, panics, and the root user's key quotas. With
// protectKernelDefaults a differing value stops berth from starting;
// without it berth sets the value.
package kerneltunables

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	"k8s.io/klog/v2"
)

// Tunable is a sysctl (with '/' separators, as under /proc/sys) and the
// value the kubelet wants.
type Tunable struct {
	Name  string
	Value int
}

// Desired lists upstream's tunables and values, in a fixed order.
func Desired() []Tunable {
	return []Tunable{
		{utilsysctl.VMOvercommitMemory, utilsysctl.VMOvercommitMemoryAlways},
		{utilsysctl.VMPanicOnOOM, utilsysctl.VMPanicOnOOMInvokeOOMKiller},
		{utilsysctl.KernelPanic, utilsysctl.KernelPanicRebootTimeout},
		{utilsysctl.KernelPanicOnOops, utilsysctl.KernelPanicOnOopsAlways},
		{utilsysctl.RootMaxKeys, utilsysctl.RootMaxKeysSetting},
		{utilsysctl.RootMaxBytes, utilsysctl.RootMaxBytesSetting},
	}
}

// Sysctl reads and writes integer sysctls (utilsysctl.New() on a node).
type Sysctl interface {
	GetSysctl(name string) (int, error)
	SetSysctl(name string, value int) error
}

// Ensure checks every tunable. With protect, any that differs is an error
// naming it (upstream's message) and nothing is written. Without, each
// differing one is set; a write the node does not permit (berth without
// the privilege, a read-only /proc/sys) is logged and skipped, any other
// failure is an error. A tunable that cannot be read is an error either
// way, as upstream.
func Ensure(logger klog.Logger, s Sysctl, protect bool) error {
	var errs []error
	for _, t := range Desired() {
		val, err := s.GetSysctl(t.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read kernel flag %s: %w", t.Name, err))
			continue
		}
		if val == t.Value {
			continue
		}
		if protect {
			errs = append(errs, fmt.Errorf("invalid kernel flag: %v, expected value: %v, actual value: %v", t.Name, t.Value, val))
			continue
		}
		logger.V(2).Info("Updating kernel flag", "flag", t.Name, "expectedValue", t.Value, "actualValue", val)
		if err := s.SetSysctl(t.Name, t.Value); err != nil {
			if notPermitted(err) {
				logger.Info("Cannot update kernel flag; leaving it", "flag", t.Name, "expectedValue", t.Value, "actualValue", val, "err", err)
				continue
			}
			errs = append(errs, fmt.Errorf("set kernel flag %s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

func notPermitted(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM)
}
