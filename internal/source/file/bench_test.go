package file

import (
	"fmt"
	"testing"
)

// benchManifest is a static pod as control-plane nodes carry them: probes,
// resources, env, host paths and a security context.
const benchManifest = `apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
  labels:
    component: kube-apiserver
    tier: control-plane
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.1:6443
spec:
  hostNetwork: true
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.37.2
    imagePullPolicy: IfNotPresent
    command:
    - kube-apiserver
    - --advertise-address=10.0.0.1
    - --allow-privileged=true
    - --authorization-mode=Node,RBAC
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --etcd-servers=https://127.0.0.1:2379
    - --secure-port=6443
    - --service-cluster-ip-range=10.96.0.0/12
    env:
    - name: GOMAXPROCS
      value: "2"
    resources:
      requests:
        cpu: 250m
        memory: 256Mi
    livenessProbe:
      httpGet:
        host: 10.0.0.1
        path: /livez
        port: 6443
        scheme: HTTPS
      initialDelaySeconds: 10
      periodSeconds: 10
      timeoutSeconds: 15
      failureThreshold: 8
    readinessProbe:
      httpGet:
        host: 10.0.0.1
        path: /readyz
        port: 6443
        scheme: HTTPS
      periodSeconds: 1
    startupProbe:
      httpGet:
        host: 10.0.0.1
        path: /livez
        port: 6443
        scheme: HTTPS
      failureThreshold: 24
    volumeMounts:
    - name: ca-certs
      mountPath: /etc/ssl/certs
      readOnly: true
    - name: k8s-certs
      mountPath: /etc/kubernetes/pki
      readOnly: true
  volumes:
  - name: ca-certs
    hostPath:
      path: /etc/ssl/certs
      type: DirectoryOrCreate
  - name: k8s-certs
    hostPath:
      path: /etc/kubernetes/pki
      type: DirectoryOrCreate
`

// BenchmarkParseManifest measures one static pod file from bytes to a
// defaulted, validated pod: what a manifest directory scan pays per changed
// file.
func BenchmarkParseManifest(b *testing.B) {
	p := newParser()
	data := []byte(benchManifest)
	if _, err := p.parse(data, "/etc/kubernetes/manifests/kube-apiserver.yaml", "node-1"); err != nil {
		b.Fatalf("benchmark manifest does not parse: %v", err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		path := fmt.Sprintf("/etc/kubernetes/manifests/pod-%d.yaml", i%64)
		if _, err := p.parse(data, path, "node-1"); err != nil {
			b.Fatal(err)
		}
	}
}
