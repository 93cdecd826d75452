package file

import v1 "k8s.io/api/core/v1"

// choice is what a manifest file gives after its content changed.
type choice struct {
	pod     *v1.Pod // the pod the file lists now (nil: none)
	refused bool    // pod is listed although Screen refused it
	err     error   // why the new content is not what runs, or nil
}

// choosePod decides which pod a manifest lists after its content changed,
// from the pod it listed before (last, and whether that one was refused)
// and the new content: parsed (nil if parseErr), refusal (Screen's
// verdict on parsed, nil when allowed).
//
//   - Content that does not parse leaves the last pod in place: a
//     half-saved edit must not kill it.
//   - Content that parses but is refused (--static-pod-security) leaves
//     the last pod in place too, if that one was allowed: refusing version
//     2 keeps version 1 running, as an update that cannot run must not
//     stop what runs.
//   - A refused pod with no allowed pod before it (a new manifest, or one
//     whose last pod was refused as well) is listed, marked refused, so
//     that node admission rejects it and its status (the mirror pod's)
//     names the violated checks.
//
// It is pure; scan does the reading and reporting.
func choosePod(last *v1.Pod, lastRefused bool, parsed *v1.Pod, parseErr, refusal error) choice {
	switch {
	case parseErr != nil:
		return choice{pod: last, refused: lastRefused, err: parseErr}
	case refusal != nil && last != nil && !lastRefused:
		return choice{pod: last, err: refusal}
	case refusal != nil:
		return choice{pod: parsed, refused: true, err: refusal}
	}
	return choice{pod: parsed}
}
