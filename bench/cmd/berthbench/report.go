package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/bench/internal/result"
)

// report prints the table, writes it as Markdown and writes every sample
// as JSON next to the agents' directories.
func (b *bench) report() error {
	lines := result.Compute(b.env.Samples, rows(b.o))
	fmt.Println()
	fmt.Printf("berthbench %s — berth vs upstream kubelet v1.37.2, same node, containerd, control plane\n",
		time.Now().Format("2006-01-02 15:04"))
	if err := result.WriteText(os.Stdout, lines); err != nil {
		return err
	}
	fmt.Println()
	b.writeBreakdown(os.Stdout)

	var md strings.Builder
	_ = result.WriteMarkdown(&md, lines)
	md.WriteString("\n")
	b.writeBreakdown(&md)
	if err := os.WriteFile(filepath.Join(b.o.out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(map[string]any{
		"date": time.Now().Format(time.RFC3339), "samples": b.env.Samples.Snapshot(),
		"runtimeOperations": b.ops,
		// Every pod's stages as the watch saw them, to line up with the
		// agents' logs (logs/).
		"pods": b.env.Tracker.All(),
	}, "", " ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.o.out, "results.json")
	logf("results: %s, %s", path, filepath.Join(b.o.out, "results.md"))
	return os.WriteFile(path, raw, 0o644)
}
