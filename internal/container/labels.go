package container

// Labels and annotations berth puts on CRI sandboxes and containers. They use
// the upstream kubelet's keys so that crictl, tools and an upstream kubelet
// read them the same way, and so that berth can adopt its own containers after
// a restart: everything it needs to recognise a container is stored on it.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"

	AnnotationContainerHash          = "io.kubernetes.container.hash"
	AnnotationContainerRestartCount  = "io.kubernetes.container.restartCount"
	AnnotationTerminationMessagePath = "io.kubernetes.container.terminationMessagePath"
	AnnotationTerminationMsgPolicy   = "io.kubernetes.container.terminationMessagePolicy"
	AnnotationPodTerminationGrace    = "io.kubernetes.pod.terminationGracePeriod"
	AnnotationContainerPorts         = "io.kubernetes.container.ports"
)
