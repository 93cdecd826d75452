package pleg

import "time"

// The one timing rule between the PLEG and the pod workers.
//
// A relist reads the runtime over some time; it is stamped with the moment
// it started (listedAt). A pod worker reads its pod's state on its own
// (Observed, stamped when told), and a container watched for exit is
// stamped when its watch began. Whatever was stamped after listedAt is
// newer than the relist for that pod or container, and the relist does not
// override it: it wakes no worker for a state the worker already read, and
// drops no exit watch that began while it was listing.
//
// Both stamps come from the PLEG's clock (Options.Clock), so the rule holds
// in tests with a fake clock. The price of "after the start of the list"
// rather than "after the list read this pod" is at most one relist period
// of delay: a container that exits while the relist is reading, after the
// worker read it running, is reported by the next relist (which compares
// with the worker's view) — and its exit watch reports it earlier anyway.
func newerThanList(stamped, listedAt time.Time) bool {
	return stamped.After(listedAt)
}
