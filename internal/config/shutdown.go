package config

import (
	"fmt"
	"time"

	kubeletconfig "k8s.io/kubelet/config/v1beta1"
)

// validateShutdown checks the graceful node shutdown fields as upstream's
// validation does, with its messages.
func validateShutdown(cfg *kubeletconfig.KubeletConfiguration) []error {
	var errs []error
	grace, critical := cfg.ShutdownGracePeriod.Duration, cfg.ShutdownGracePeriodCriticalPods.Duration
	if featureEnabled(cfg.FeatureGates, "GracefulNodeShutdown") {
		if critical > grace {
			errs = append(errs, fmt.Errorf("invalid configuration: shutdownGracePeriodCriticalPods %v must be <= shutdownGracePeriod %v", cfg.ShutdownGracePeriodCriticalPods, cfg.ShutdownGracePeriod))
		}
		if grace < 0 || (grace > 0 && grace < time.Second) {
			errs = append(errs, fmt.Errorf("invalid configuration: shutdownGracePeriod %v must be either zero or otherwise >= 1 sec", cfg.ShutdownGracePeriod))
		}
		if critical < 0 || (critical > 0 && critical < time.Second) {
			errs = append(errs, fmt.Errorf("invalid configuration: shutdownGracePeriodCriticalPods %v must be either zero or otherwise >= 1 sec", cfg.ShutdownGracePeriodCriticalPods))
		}
	} else if grace > 0 || critical > 0 {
		errs = append(errs, fmt.Errorf("invalid configuration: specifying shutdownGracePeriod or shutdownGracePeriodCriticalPods requires feature gate GracefulNodeShutdown"))
	}
	byPriority := len(cfg.ShutdownGracePeriodByPodPriority) != 0
	switch {
	case !featureEnabled(cfg.FeatureGates, "GracefulNodeShutdownBasedOnPodPriority"):
		if byPriority {
			errs = append(errs, fmt.Errorf("invalid configuration: Specifying shutdownGracePeriodByPodPriority requires feature gate GracefulNodeShutdownBasedOnPodPriority"))
		}
	case byPriority && (grace > 0 || critical > 0):
		errs = append(errs, fmt.Errorf("invalid configuration: Cannot specify both shutdownGracePeriodByPodPriority and shutdownGracePeriod at the same time"))
	}
	return errs
}
