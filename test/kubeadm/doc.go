// Package kubeadm holds berth's end-to-end tests with kubeadm v1.37.2: a
// node built the way clusters are really built, with berth installed in
// place of the kubelet.
//
// kubeadm uses fixed paths (/etc/kubernetes, /var/lib/kubelet,
// /var/lib/etcd) and ports (6443, 10250, 10248, 2379), so the node is a
// machine of its own: mount, network and UTS namespaces (node_test.go) in
// which those paths are bind mounts of directories under the run's base
// ($TMPDIR/berth-e2e-kubeadm-*), the hostname is the node's name, and a veth
// pair gives it an address and a default route that never leave it. The
// control plane (hack/cluster.sh, with bootstrap-token authentication and
// the bootstrapsigner and tokencleaner controllers), a containerd
// (hack/containerd.sh) and everything kubeadm does run inside through
// nsenter, all on the namespace's own loopback; the test's API client dials
// into it. There is no systemd: tools/kubeletunit plays the service manager
// for the packages' kubelet unit and kubeadm's drop-in (hack/kubeadm),
// restarting berth whenever it exits, so berth crash-loops until kubeadm has
// written its configuration, as on a real node.
//
// TestKubeadmJoin joins such a node to the control plane of hack/cluster.sh
// running inside it. TestKubeadmInit makes a second
// machine the same way, without a control plane, imports the control
// plane's images built from the binaries of `hack/cluster.sh build` and
// named as kubeadm v1.37.2 expects, and runs `kubeadm init` there with berth
// as the kubelet of the static pods.
//
// The tests run only when BERTH_E2E is set (`make test-cluster`). They need
// root, containerd, runc, the CNI plugins, the local images and the binaries
// of `hack/cluster.sh build` (built when missing). The base directory is
// removed after a clean run and kept otherwise; when the test binary dies
// early, the shell holding the namespaces stops what runs inside.
// BERTH_E2E_ARTIFACTS, when set, receives the logs.
package kubeadm
