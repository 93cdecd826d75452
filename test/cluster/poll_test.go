package cluster

import (
	"fmt"
	"testing"
	"time"
)

// pollInterval is short: the timeouts are upper bounds, not waits.
const pollInterval = 200 * time.Millisecond

// poll calls cond until it holds (returning how long that took), until it
// returns an error, or until timeout. The error carries cond's last message.
func poll(timeout time.Duration, cond func() (bool, string, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, msg, err := cond()
		if ok {
			return time.Since(start), nil
		}
		if err != nil {
			return time.Since(start), fmt.Errorf("after %s: %v (last: %s)", since(start), err, msg)
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("not within %s: %s", timeout, msg)
		}
		time.Sleep(pollInterval)
	}
}

// poll is the package's poll that also gives up as soon as berth exits
// without being asked to.
func (env *environment) poll(timeout time.Duration, cond func() (bool, string)) (time.Duration, error) {
	return poll(timeout, func() (bool, string, error) {
		ok, msg := cond()
		if ok {
			return true, "", nil
		}
		return false, msg, env.berth.exitedUnexpectedly()
	})
}

// eventually polls cond until it holds or fails t after timeout.
func (env *environment) eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	d, err := env.poll(timeout, cond)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
