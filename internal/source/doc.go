// Package source turns berth's pod sources (static pod files, the API
// server) into one stream of desired-pod changes. The pod workers own the
// Merger (podworker.PodSet); everything else reads desired pods there.
//
// Each source delivers full snapshots of the pods it wants; it never sends
// deltas, so a lost or repeated snapshot does no harm. Merger keeps the
// latest snapshot of every source, settles name and UID conflicts between
// them, and returns the changes (Add, Update, Remove) that Diff finds
// between the desired pods before and after. Nothing in this package does
// IO; the sources live in sub-packages (file: the static pod directory).
//
// The caller's loop, in short:
//
//	files := file.New(file.Options{Path: path, NodeName: node, Period: period})
//	snapshots := make(chan []*v1.Pod)
//	go files.Run(ctx, snapshots)
//	merger := source.NewMerger(logger)
//	for {
//		select {
//		case pods := <-snapshots:
//			for _, c := range merger.Set(source.SourceFile, pods) {
//				// hand c.Op and c.Pod to the pod workers
//			}
//			if merger.SeenAllSources(source.SourceFile) {
//				// now runtime pods no source wants may be removed
//			}
//		case <-ctx.Done():
//			return
//		}
//	}
package source
