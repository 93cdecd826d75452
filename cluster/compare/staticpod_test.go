package compare

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/config"
	kubetypes "k8s.io/kubernetes/pkg/kubelet/types"

	"github.com/berth-dev/berth/internal/source"
	"github.com/berth-dev/berth/internal/source/file"
)

const staticNode = "node-1"

// staticManifests are static pod files that both kubelets accept; each
// exercises defaults of the API (pkg/apis/core/v1) or of the static pod
// source (name, namespace, node, tolerations, status).
var staticManifests = map[string]string{
	"minimal.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: minimal}
spec:
  containers: [{name: c, image: busybox}]
`,
	"ports-and-pull.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: ports, namespace: kube-system, labels: {app: web}}
spec:
  containers:
  - name: web
    image: nginx:1.25
    ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP, name: dns}]
  - name: latest
    image: registry.k8s.io/pause:latest
  - name: digest
    image: busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  - name: explicit
    image: busybox
    imagePullPolicy: Never
`,
	"host-network.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  initContainers:
  - name: init
    image: busybox
    ports: [{containerPort: 9000}]
  containers:
  - name: c
    image: busybox
    ports: [{containerPort: 8080}, {containerPort: 8443, hostPort: 8443}]
`,
	"probes-and-hooks.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: probes}
spec:
  containers:
  - name: c
    image: busybox:1.36
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 3
    startupProbe:
      grpc: {port: 9090}
    lifecycle:
      postStart:
        httpGet: {port: 80}
      preStop:
        exec: {command: [sh, -c, sleep 1]}
  - name: exec
    image: busybox:1.36
    livenessProbe:
      exec: {command: ["true"]}
      failureThreshold: 1
`,
	"resources.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: resources}
spec:
  containers:
  - name: limits-only
    image: busybox:1.36
    resources:
      limits: {cpu: 500m, memory: 64Mi}
  - name: both
    image: busybox:1.36
    resources:
      requests: {cpu: 100m}
      limits: {cpu: 200m, memory: 32Mi, ephemeral-storage: 1Gi}
`,
	"pod-level-resources.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: podlevel}
spec:
  resources:
    limits: {cpu: "1", memory: 128Mi}
  containers:
  - name: c
    image: busybox:1.36
`,
	"volumes-and-env.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: volumes}
spec:
  volumes:
  - name: scratch
    emptyDir: {}
  - name: host
    hostPath: {path: /var/log}
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef: {fieldPath: metadata.labels}
      - path: cpu
        resourceFieldRef: {containerName: c, resource: limits.cpu}
  containers:
  - name: c
    image: busybox:1.36
    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: PLAIN
      value: x
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: host, mountPath: /host, readOnly: true}
    - {name: info, mountPath: /info}
`,
	"spec-fields.yaml": `
apiVersion: v1
kind: Pod
metadata:
  name: spec
  annotations: {note: kept}
spec:
  restartPolicy: OnFailure
  dnsPolicy: Default
  terminationGracePeriodSeconds: 5
  priorityClassName: system-node-critical
  securityContext:
    runAsUser: 1000
    sysctls: [{name: net.ipv4.ip_local_port_range, value: "1024 65535"}]
  tolerations:
  - {operator: Exists, effect: NoExecute, tolerationSeconds: 30}
  - {key: dedicated, operator: Equal, value: db, effect: NoSchedule}
  os: {name: linux}
  dnsConfig:
    nameservers: [1.1.1.1]
  containers:
  - name: c
    image: busybox:1.36
    command: [sleep, "3600"]
    securityContext:
      privileged: false
      capabilities: {add: [NET_ADMIN]}
    terminationMessagePolicy: FallbackToLogsOnError
`,
	"sidecar.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: sidecar, uid: 11111111-2222-3333-4444-555555555555}
spec:
  initContainers:
  - name: log
    image: busybox:1.36
    restartPolicy: Always
    startupProbe:
      exec: {command: ["true"]}
  - name: setup
    image: busybox:1.36
  containers:
  - name: app
    image: busybox:1.36
`,
	"container-restart-rules.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: rules}
spec:
  restartPolicy: Never
  initContainers:
  - name: setup
    image: busybox:1.36
    restartPolicy: OnFailure
  containers:
  - name: app
    image: busybox:1.36
    restartPolicy: Never
    restartPolicyRules:
    - action: Restart
      exitCodes: {operator: In, values: [42]}
  - name: always
    image: busybox:1.36
    restartPolicy: Always
`,
	"sidecar-with-restart-rules.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: siderules}
spec:
  initContainers:
  - name: side
    image: busybox
    restartPolicy: Always
    restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [1]}}]
  containers: [{name: c, image: busybox}]
`,
	"more-defaults.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: more}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: -1
  hostPID: true
  dnsPolicy: ClusterFirstWithHostNet
  schedulerName: custom
  securityContext:
    seccompProfile: {type: RuntimeDefault}
    fsGroup: 2000
  volumes:
  - name: mem
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: dir
    hostPath: {path: /run/x, type: DirectoryOrCreate}
  - name: proj
    projected:
      sources:
      - downwardAPI:
          items: [{path: name, fieldRef: {fieldPath: metadata.name}}]
  containers:
  - name: c
    image: example.com:5000/team/app:v1
    workingDir: /work
    ports: [{containerPort: 8080, hostPort: 18080, hostIP: 127.0.0.1}]
    resources:
      requests: {memory: 10Mi}
    env:
    - name: NODE
      valueFrom: {fieldRef: {apiVersion: v1, fieldPath: spec.nodeName}}
    - name: MEM
      valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1Mi}}
    livenessProbe:
      httpGet:
        path: /live
        port: http
        host: 127.0.0.1
        scheme: HTTPS
        httpHeaders: [{name: X-Probe, value: "1"}]
      terminationGracePeriodSeconds: 3
    lifecycle:
      preStop:
        sleep: {seconds: 0}
    volumeMounts:
    - {name: mem, mountPath: /mem}
    - {name: dir, mountPath: /dir, mountPropagation: HostToContainer}
    - {name: proj, mountPath: /proj}
`,
	"pull-policies.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: pull}
spec:
  volumes:
  - name: img
    image: {reference: "registry.k8s.io/pause"}
  - name: pinned
    image: {reference: "registry.k8s.io/pause:3.10"}
  containers:
  - name: latest-and-digest
    image: busybox:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  - name: tag-and-digest
    image: busybox:1.36@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  - name: unparsable
    image: Busy_Box
  - name: port-no-tag
    image: localhost:5000/app
    volumeMounts:
    - {name: img, mountPath: /img}
    - {name: pinned, mountPath: /pinned}
`,
	"json.json": `{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "json", "namespace": "ns"},
 "spec": {"containers": [{"name": "c", "image": "busybox", "stdin": true, "tty": true}]}}`,
}

// TestStaticPods runs upstream's static pod source (pkg/kubelet/config: the
// file source and the pod config merge, as the kubelet wires them) and
// berth's file.ParseManifest over the same manifest files, and compares the
// pods. UIDs differ by design (upstream hashes its internal Go types, berth
// the JSON encoding: see contentUID); the seen annotation is a time.
func TestStaticPods(t *testing.T) {
	dir := t.TempDir()
	for name, data := range staticManifests {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	want := upstreamStaticPods(t, dir, len(staticManifests))
	for name, data := range staticManifests {
		t.Run(name, func(t *testing.T) {
			got, err := file.ParseManifest([]byte(data), filepath.Join(dir, name), staticNode)
			if err != nil {
				t.Fatalf("berth rejects the manifest: %v", err)
			}
			w, ok := want[got.Namespace+"/"+got.Name]
			if !ok {
				t.Fatalf("upstream has no pod %s/%s", got.Namespace, got.Name)
			}
			// A UID the manifest sets is kept by both.
			if manifestUID := types.UID("11111111-2222-3333-4444-555555555555"); w.UID == manifestUID && got.UID != manifestUID {
				t.Errorf("UID = %s, want the manifest's", got.UID)
			}
			gj, wj := marshal(t, comparable(got)), marshal(t, comparable(w))
			if gj != wj {
				t.Errorf("berth's static pod differs from upstream's:\n%s", diffLines(gj, wj))
			}
		})
	}
}

// comparable drops what may differ: the UID and the hash annotation made
// of it, and the time the pod was first seen.
func comparable(pod *v1.Pod) *v1.Pod {
	p := pod.DeepCopy()
	p.UID = ""
	delete(p.Annotations, source.AnnotationConfigHash)
	delete(p.Annotations, source.AnnotationConfigSeen)
	return p
}

// upstreamStaticPods starts upstream's file source on dir and returns the
// pods of its first update, by namespace/name. The source's goroutines
// run until the test binary exits: upstream gives them no stop.
func upstreamStaticPods(t *testing.T, dir string, n int) map[string]*v1.Pod {
	t.Helper()
	logger := klog.Background()
	cfg := kubeletconfig.NewPodConfig(record.NewFakeRecorder(100), noStartupSLI{})
	kubeletconfig.NewSourceFile(logger, dir, staticNode, time.Hour, cfg.Channel(context.Background(), kubetypes.FileSource))
	select {
	case u := <-cfg.Updates():
		pods := map[string]*v1.Pod{}
		for _, p := range u.Pods {
			pods[p.Namespace+"/"+p.Name] = p
		}
		if len(pods) != n {
			t.Fatalf("upstream accepted %d of %d manifests (its log says why): %v", len(pods), n, slices.Sorted(maps.Keys(pods)))
		}
		return pods
	case <-time.After(time.Minute):
		t.Fatal("upstream's file source sent nothing in a minute")
	}
	return nil
}

type noStartupSLI struct{}

func (noStartupSLI) ObservedPodOnWatch(klog.Logger, *v1.Pod, time.Time) {}

// rejectedManifests are static pod files upstream refuses (validation, or a
// reference to an API object a static pod cannot have); berth must refuse
// them too.
var rejectedManifests = map[string]string{
	"hostpid-and-shared-pid.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: pid}
spec:
  hostPID: true
  shareProcessNamespace: true
  containers: [{name: c, image: busybox}]
`,
	"sleep-beyond-grace.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: sleep}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    lifecycle: {preStop: {sleep: {seconds: 5}}}
`,
	"service-account.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: sa}
spec:
  serviceAccountName: builder
  containers: [{name: c, image: busybox}]
`,
	"configmap-volume.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: cm}
spec:
  volumes: [{name: v, configMap: {name: settings}}]
  containers: [{name: c, image: busybox, volumeMounts: [{name: v, mountPath: /v}]}]
`,
	"secret-env.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: secretenv}
spec:
  containers:
  - name: c
    image: busybox
    env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]
`,
	"no-containers.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: empty}
spec:
  containers: []
`,
	"duplicate-names.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: dup}
spec:
  initContainers: [{name: c, image: busybox}]
  containers: [{name: c, image: busybox}]
`,
	"bad-name.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: Bad_Name}
spec:
  containers: [{name: c, image: busybox}]
`,
	"no-image.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers: [{name: c}]
`,
	"bad-port.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: port}
spec:
  containers: [{name: c, image: busybox, ports: [{containerPort: 70000}]}]
`,
	"duplicate-host-port.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: hostport}
spec:
  containers:
  - {name: a, image: busybox, ports: [{containerPort: 80, hostPort: 8080}]}
  - {name: b, image: busybox, ports: [{containerPort: 81, hostPort: 8080}]}
`,
	"restart-rules-without-policy.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: rules}
spec:
  containers:
  - name: c
    image: busybox
    restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [1]}}]
`,
	"bad-restart-policy.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: restart}
spec:
  restartPolicy: Sometimes
  containers: [{name: c, image: busybox}]
`,
	"value-and-value-from.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: env}
spec:
  containers:
  - name: c
    image: busybox
    env: [{name: X, value: a, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
`,
	"unknown-volume.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: mount}
spec:
  containers: [{name: c, image: busybox, volumeMounts: [{name: nope, mountPath: /x}]}]
`,
	"bad-label.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: label, labels: {"a b": c}}
spec:
  containers: [{name: c, image: busybox}]
`,
	"bad-probe.yaml": `
apiVersion: v1
kind: Pod
metadata: {name: probe}
spec:
  containers:
  - name: c
    image: busybox
    readinessProbe: {exec: {command: ["true"]}, tcpSocket: {port: 80}}
`,
}

// TestStaticPodsRejected: every manifest upstream refuses, berth refuses.
func TestStaticPodsRejected(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"sentinel.yaml": staticManifests["minimal.yaml"]}
	maps.Copy(files, rejectedManifests)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Only the sentinel gets through upstream: the table holds no manifest
	// that upstream would accept.
	upstreamStaticPods(t, dir, 1)
	for name, data := range rejectedManifests {
		t.Run(name, func(t *testing.T) {
			if pod, err := file.ParseManifest([]byte(data), filepath.Join(dir, name), staticNode); err == nil {
				t.Errorf("berth accepts what upstream refuses: %s/%s", pod.Namespace, pod.Name)
			}
		})
	}
}
