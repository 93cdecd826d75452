package nodestatus

import (
	"time"

	"k8s.io/klog/v2"
)

// outage logs a failing loop once when it starts failing and once when it
// works again, so that an API server that is down for minutes does not
// fill the log with the same error every few seconds. Repeats go to
// verbosity 4. It belongs to one goroutine.
type outage struct {
	what  string // "Node status update", "Node lease renewal", ...
	since time.Time
	down  bool
}

func (o *outage) failed(logger klog.Logger, now time.Time, err error) {
	if o.down {
		logger.V(4).Info(o.what+" still failing", "err", err, "since", o.since)
		return
	}
	o.down, o.since = true, now
	logger.Error(err, o.what+" failed; retrying, further failures are logged at verbosity 4")
}

func (o *outage) ok(logger klog.Logger, now time.Time) {
	if !o.down {
		return
	}
	o.down = false
	logger.Info(o.what+" works again", "downFor", now.Sub(o.since).Round(time.Second))
}
