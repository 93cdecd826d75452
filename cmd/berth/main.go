// Command berth is a kubelet: it runs the pods of one node on a CRI
// container runtime. See internal/config for its flags and configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/berth-dev/berth/internal/app"
	"github.com/berth-dev/berth/internal/config"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as upstream's kubelet links it
	"k8s.io/klog/v2"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, returning the exit status: 0 on success,
// 1 on a bad configuration or a failure, 2 on a malformed command line.
func run(args []string, stdout, stderr io.Writer) int {
	res, err := config.Parse(args, config.Env{Output: stderr})
	var usageErr *config.UsageError
	switch {
	case errors.Is(err, config.ErrHelp):
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "berth: %v\nRun 'berth --help' for usage.\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
	if res.Version {
		// Exactly as the upstream kubelet prints it: installers parse it
		// (kubeadm's preflight KubeletVersion check runs `kubelet --version`).
		fmt.Fprintf(stdout, "Kubernetes %s\n", app.KubeletVersion)
		return 0
	}

	// The logging section (format, verbosity, vmodule, flush frequency,
	// split streams) applied as upstream's kubelet applies it.
	if err := logsapi.ValidateAndApplyAsField(&res.Options.Config.Logging, nil, field.NewPath("logging")); err != nil {
		fmt.Fprintf(stderr, "berth: %v\n", err)
		return 1
	}
	defer klog.Flush()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling so that a
	// second one kills berth even if shutdown hangs.
	context.AfterFunc(ctx, stop)
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)

	opts := res.Options
	logger.Info("Starting berth", "version", version(), "nodeName", opts.NodeName,
		"standalone", res.Standalone(), "runtimeEndpoint", opts.RuntimeEndpoint,
		"staticPodPath", opts.StaticPodPath)
	for _, w := range res.Warnings {
		logger.Info(w.Msg, w.KeysAndValues...)
	}
	if len(res.Unsupported) > 0 {
		logger.Info("Warning: berth does not act on these configuration fields yet; they are ignored",
			"fields", res.Unsupported)
	}
	if len(res.UnsupportedFlags) > 0 {
		logger.Info("Warning: berth does not act on these flags yet; they are ignored",
			"flags", res.UnsupportedFlags)
	}

	if err := app.Run(ctx, opts); err != nil {
		// Logged once here, at the boundary; components return errors.
		logger.Error(err, "berth stopped")
		return 1
	}
	return 0
}

// version is the module version berth was built as, "(devel)" from a
// source tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
