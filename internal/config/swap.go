package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
)

// checkSwap refuses to start with swap on when failSwapOn (the default)
// asks for it, with upstream's message. swapOn nil means reading
// /proc/swaps.
func checkSwap(cfg *kubeletconfig.KubeletConfiguration, swapOn func() (bool, error)) error {
	if !ptr.Deref(cfg.FailSwapOn, true) {
		return nil
	}
	if swapOn == nil {
		swapOn = procSwapsOn
	}
	on, err := swapOn()
	if err != nil {
		return fmt.Errorf("failSwapOn (--fail-swap-on): failed to determine if swap is on: %w", err)
	}
	if on {
		return fmt.Errorf("failSwapOn (--fail-swap-on): running with swap on is not supported, please disable swap or set --fail-swap-on flag to false")
	}
	return nil
}

// procSwapsOn reports whether /proc/swaps lists a swap area (a line
// beyond its header). A kernel without swap support has no such file.
func procSwapsOn() (bool, error) {
	data, err := os.ReadFile("/proc/swaps")
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return swapsListed(data), nil
}

// swapsListed reports whether the contents of /proc/swaps list a swap area.
func swapsListed(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	lines := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines++
		}
	}
	return lines > 1
}
