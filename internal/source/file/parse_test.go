package file

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-dev/berth/internal/source"
)

const nodeName = "Node-1"

const yamlPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: nginx
    image: nginx:1.25
    ports:
    - containerPort: 80
`

const jsonPod = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "web", "namespace": "kube-system"},
  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
}`

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string // substring; "" means success
		check   func(t *testing.T, pod *v1.Pod)
	}{{
		name: "yaml",
		data: yamlPod,
		check: func(t *testing.T, pod *v1.Pod) {
			if pod.Name != "web-node-1" || pod.Namespace != "default" {
				t.Errorf("name = %s/%s, want default/web-node-1", pod.Namespace, pod.Name)
			}
			if pod.Spec.NodeName != nodeName {
				t.Errorf("nodeName = %q", pod.Spec.NodeName)
			}
			if pod.Labels["app"] != "web" {
				t.Errorf("labels = %v", pod.Labels)
			}
			if len(pod.UID) != 32 {
				t.Errorf("UID = %q, want 32 hex digits", pod.UID)
			}
			if got := pod.Annotations[source.AnnotationConfigHash]; got != string(pod.UID) {
				t.Errorf("hash annotation = %q, want the UID %q", got, pod.UID)
			}
			if got := pod.Annotations[source.AnnotationConfigSource]; got != source.SourceFile {
				t.Errorf("source annotation = %q", got)
			}
			if _, ok := pod.Annotations[source.AnnotationConfigSeen]; ok {
				t.Error("ParseManifest set the seen annotation")
			}
			if pod.Status.Phase != v1.PodPending {
				t.Errorf("phase = %q", pod.Status.Phase)
			}
			want := v1.Toleration{Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}
			if len(pod.Spec.Tolerations) != 1 || pod.Spec.Tolerations[0] != want {
				t.Errorf("tolerations = %+v", pod.Spec.Tolerations)
			}
			c := pod.Spec.Containers[0]
			if c.ImagePullPolicy != v1.PullIfNotPresent || c.Ports[0].Protocol != v1.ProtocolTCP ||
				pod.Spec.RestartPolicy != v1.RestartPolicyAlways {
				t.Errorf("defaults not applied: %+v", pod.Spec)
			}
		},
	}, {
		name: "json",
		data: jsonPod,
		check: func(t *testing.T, pod *v1.Pod) {
			if pod.Name != "web-node-1" || pod.Namespace != "kube-system" {
				t.Errorf("name = %s/%s", pod.Namespace, pod.Name)
			}
			if pod.Spec.Containers[0].ImagePullPolicy != v1.PullAlways {
				t.Errorf("pull policy = %s", pod.Spec.Containers[0].ImagePullPolicy)
			}
		},
	}, {
		name: "uid given in the manifest is kept",
		data: strings.Replace(yamlPod, "  name: web\n", "  name: web\n  uid: my-uid\n", 1),
		check: func(t *testing.T, pod *v1.Pod) {
			if pod.UID != "my-uid" || pod.Annotations[source.AnnotationConfigHash] != "my-uid" {
				t.Errorf("UID = %q, hash = %q", pod.UID, pod.Annotations[source.AnnotationConfigHash])
			}
		},
	}, {
		name: "existing NoExecute toleration replaced, others kept",
		data: yamlPod + `  tolerations:
  - operator: Exists
    effect: NoExecute
    tolerationSeconds: 30
  - key: a
    operator: Exists
`,
		check: func(t *testing.T, pod *v1.Pod) {
			tl := pod.Spec.Tolerations
			if len(tl) != 2 || tl[0].TolerationSeconds != nil || tl[0].Effect != v1.TaintEffectNoExecute || tl[1].Key != "a" {
				t.Errorf("tolerations = %+v", tl)
			}
		},
	}, {
		name:    "wrong kind",
		data:    strings.Replace(yamlPod, "kind: Pod", "kind: Deployment", 1),
		wantErr: `kind "Deployment"`,
	}, {
		name:    "wrong apiVersion",
		data:    strings.Replace(yamlPod, "apiVersion: v1", "apiVersion: apps/v1", 1),
		wantErr: `apiVersion "apps/v1"`,
	}, {
		name:    "missing kind",
		data:    strings.Replace(yamlPod, "kind: Pod\n", "", 1),
		wantErr: "must be apiVersion v1, kind Pod",
	}, {
		name:    "pod list",
		data:    `{"apiVersion": "v1", "kind": "PodList", "items": []}`,
		wantErr: `kind "PodList"`,
	}, {
		name:    "empty file",
		data:    "",
		wantErr: "not a single object",
	}, {
		name:    "not yaml",
		data:    "apiVersion: v1\nkind: Pod\n  bad: [indent",
		wantErr: "not valid YAML",
	}, {
		name:    "missing name",
		data:    strings.Replace(yamlPod, "  name: web\n", "", 1),
		wantErr: "metadata.name: Required",
	}, {
		name:    "invalid name",
		data:    strings.Replace(yamlPod, "name: web", "name: Web_Server", 1),
		wantErr: "metadata.name: Invalid value",
	}, {
		name:    "uid leaving the root dir",
		data:    strings.Replace(yamlPod, "  name: web\n", "  name: web\n  uid: ../..\n", 1),
		wantErr: `metadata.uid: Invalid value: "../..": must be 1-253 letters`,
	}, {
		name:    "uid with a slash",
		data:    strings.Replace(yamlPod, "  name: web\n", "  name: web\n  uid: a/b\n", 1),
		wantErr: `metadata.uid: Invalid value: "a/b"`,
	}, {
		name:    "unmasked /proc in the host user namespace",
		data:    strings.Replace(yamlPod, "    image: nginx:1.25\n", "    image: nginx:1.25\n    securityContext:\n      procMount: Unmasked\n", 1),
		wantErr: "spec.containers[0].securityContext.procMount: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`",
	}, {
		name:    "unknown procMount",
		data:    strings.Replace(yamlPod, "    image: nginx:1.25\n", "    image: nginx:1.25\n    securityContext:\n      procMount: Half\n", 1),
		wantErr: `spec.containers[0].securityContext.procMount: Unsupported value: "Half"`,
	}, {
		name:    "invalid namespace",
		data:    strings.Replace(yamlPod, "  name: web\n", "  name: web\n  namespace: Kube.System\n", 1),
		wantErr: "metadata.namespace: Invalid value",
	}, {
		name:    "unknown field",
		data:    strings.Replace(yamlPod, "image: nginx:1.25", "image: nginx:1.25\n    imagee: typo", 1),
		wantErr: `unknown field "spec.containers[0].imagee"`,
	}, {
		name:    "duplicate key",
		data:    strings.Replace(yamlPod, "image: nginx:1.25", "image: nginx:1.25\n    image: nginx:1.26", 1),
		wantErr: "already set",
	}, {
		name:    "bad container name",
		data:    strings.Replace(yamlPod, "name: nginx", "name: Nginx_1", 1),
		wantErr: "spec.containers[0].name: Invalid value",
	}, {
		name: "duplicate container name",
		data: yamlPod + `  - name: nginx
    image: busybox
`,
		wantErr: `spec.containers[1].name: Duplicate value: "nginx"`,
	}, {
		name: "init and regular container share names",
		data: yamlPod + `  initContainers:
  - name: nginx
    image: busybox
`,
		wantErr: "Duplicate value",
	}, {
		name:    "no containers",
		data:    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers: []\n",
		wantErr: "spec.containers: Required",
	}, {
		name:    "missing image",
		data:    strings.Replace(yamlPod, "    image: nginx:1.25\n", "", 1),
		wantErr: "spec.containers[0].image: Required",
	}, {
		name:    "bad restart policy",
		data:    yamlPod + "  restartPolicy: Sometimes\n",
		wantErr: `spec.restartPolicy: Unsupported value: "Sometimes"`,
	}, {
		name:    "bad port",
		data:    strings.Replace(yamlPod, "containerPort: 80", "containerPort: 70000", 1),
		wantErr: "spec.containers[0].ports[0].containerPort: Invalid value",
	}, {
		name: "mount of an unknown volume",
		data: yamlPod + `    volumeMounts:
    - name: data
      mountPath: /data
`,
		wantErr: `spec.containers[0].volumeMounts[0].name: Not found: "data"`,
	}, {
		name: "secret volume",
		data: yamlPod + `  volumes:
  - name: s
    secret:
      secretName: creds
`,
		wantErr: "spec.volumes[0].secret: Forbidden: static pods may not reference secrets",
	}, {
		name: "configMap volume",
		data: yamlPod + `  volumes:
  - name: c
    configMap:
      name: cfg
`,
		wantErr: "spec.volumes[0].configMap: Forbidden: static pods may not reference configmaps",
	}, {
		name: "pvc volume",
		data: yamlPod + `  volumes:
  - name: c
    persistentVolumeClaim:
      claimName: data
`,
		wantErr: "spec.volumes[0].persistentVolumeClaim: Forbidden",
	}, {
		name: "projected service account token",
		data: yamlPod + `  volumes:
  - name: t
    projected:
      sources:
      - serviceAccountToken:
          path: token
`,
		wantErr: "spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: static pods may not reference serviceaccounts",
	}, {
		name: "projected downward API is allowed",
		data: yamlPod + `    volumeMounts:
    - name: info
      mountPath: /etc/info
  volumes:
  - name: info
    projected:
      sources:
      - downwardAPI:
          items:
          - path: labels
            fieldRef:
              fieldPath: metadata.labels
`,
	}, {
		name:    "service account",
		data:    yamlPod + "  serviceAccountName: default\n",
		wantErr: "spec.serviceAccountName: Forbidden",
	}, {
		name: "envFrom configMap",
		data: yamlPod + `    envFrom:
    - configMapRef:
        name: cfg
`,
		wantErr: "spec.containers[0].envFrom[0].configMapRef: Forbidden",
	}, {
		name: "env secretKeyRef",
		data: yamlPod + `    env:
    - name: A
      value: x
    - name: PASSWORD
      valueFrom:
        secretKeyRef:
          name: creds
          key: password
`,
		wantErr: "spec.containers[0].env[1].valueFrom.secretKeyRef: Forbidden: static pods may not reference secrets",
	}, {
		name: "init container configMapKeyRef",
		data: yamlPod + `  initContainers:
  - name: init
    image: busybox
    env:
    - name: A
      valueFrom:
        configMapKeyRef:
          name: cfg
          key: a
`,
		wantErr: "spec.initContainers[0].env[0].valueFrom.configMapKeyRef: Forbidden",
	}, {
		name: "env fieldRef is allowed",
		data: yamlPod + `    env:
    - name: NODE
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
`,
		check: func(t *testing.T, pod *v1.Pod) {
			if got := pod.Spec.Containers[0].Env[0].ValueFrom.FieldRef.APIVersion; got != "v1" {
				t.Errorf("fieldRef apiVersion = %q", got)
			}
		},
	}, {
		name:    "hostPID with a shared process namespace",
		data:    yamlPod + "  hostPID: true\n  shareProcessNamespace: true\n",
		wantErr: "spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled",
	}, {
		name:    "env value and valueFrom",
		data:    yamlPod + "    env:\n    - name: X\n      value: a\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n",
		wantErr: "spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
	}, {
		name:    "env valueFrom with two sources",
		data:    yamlPod + "    env:\n    - name: X\n      valueFrom: {fieldRef: {fieldPath: metadata.name}, resourceFieldRef: {resource: limits.cpu}}\n",
		wantErr: "spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not have more than one field specified at a time",
	}, {
		name:    "env valueFrom without a source",
		data:    yamlPod + "    env:\n    - name: X\n      valueFrom: {}\n",
		wantErr: "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of",
	}, {
		name:    "probe with two actions",
		data:    yamlPod + "    readinessProbe: {exec: {command: [\"true\"]}, tcpSocket: {port: 80}}\n",
		wantErr: "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
	}, {
		name:    "probe without an action",
		data:    yamlPod + "    livenessProbe: {periodSeconds: 3}\n",
		wantErr: "spec.containers[0].livenessProbe: Required value: must specify a handler type",
	}, {
		name:    "hook sleeping beyond the grace period",
		data:    yamlPod + "    lifecycle: {preStop: {sleep: {seconds: 40}}}\n",
		wantErr: "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 40: must be non-negative and less than terminationGracePeriodSeconds (30)",
	}, {
		name:  "hook sleeping the whole grace period",
		data:  yamlPod + "    lifecycle: {preStop: {sleep: {seconds: 30}}}\n",
		check: func(t *testing.T, pod *v1.Pod) {},
	}, {
		name:    "host port twice",
		data:    strings.Replace(yamlPod, "    - containerPort: 80\n", "    - {containerPort: 80, hostPort: 8080}\n    - {containerPort: 81, hostPort: 8080}\n", 1),
		wantErr: `spec.containers[0].ports[1].hostPort: Duplicate value: "TCP//8080"`,
	}, {
		name:  "one host port on two protocols",
		data:  strings.Replace(yamlPod, "    - containerPort: 80\n", "    - {containerPort: 80, hostPort: 8080}\n    - {containerPort: 81, hostPort: 8080, protocol: UDP}\n", 1),
		check: func(t *testing.T, pod *v1.Pod) {},
	}, {
		name:  "init containers may reuse a host port",
		data:  yamlPod + "  initContainers:\n  - {name: i1, image: busybox, ports: [{containerPort: 80, hostPort: 8080}]}\n  - {name: i2, image: busybox, ports: [{containerPort: 80, hostPort: 8080}]}\n",
		check: func(t *testing.T, pod *v1.Pod) {},
	}, {
		name:    "ephemeral containers",
		data:    yamlPod + "  ephemeralContainers:\n  - name: debug\n    image: busybox\n",
		wantErr: "spec.ephemeralContainers: Forbidden",
	}, {
		name: "container restart policy and rules are accepted",
		data: yamlPod + `    restartPolicy: Never
    restartPolicyRules:
    - action: Restart
      exitCodes:
        operator: In
        values: [42]
`,
		check: func(t *testing.T, pod *v1.Pod) {
			if got := pod.Spec.Containers[0].RestartPolicyRules; len(got) != 1 || got[0].ExitCodes.Values[0] != 42 {
				t.Errorf("restartPolicyRules = %+v", got)
			}
		},
	}, {
		name:    "restart rules need a container restart policy",
		data:    yamlPod + "    restartPolicyRules:\n    - action: Restart\n      exitCodes:\n        operator: In\n        values: [1]\n",
		wantErr: "spec.containers[0].restartPolicy: Required",
	}, {
		name:    "restart rule action RestartAllContainers is not supported",
		data:    yamlPod + "    restartPolicy: Never\n    restartPolicyRules:\n    - action: RestartAllContainers\n      exitCodes:\n        operator: In\n        values: [1]\n",
		wantErr: `spec.containers[0].restartPolicyRules[0].action: Unsupported value: "RestartAllContainers"`,
	}, {
		name:    "bad container restart policy",
		data:    yamlPod + "    restartPolicy: Sometimes\n",
		wantErr: `spec.containers[0].restartPolicy: Unsupported value: "Sometimes"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := ParseManifest([]byte(tt.data), "/etc/kubernetes/manifests/web.yaml", nodeName)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, pod)
			}
		})
	}
}

func TestParseManifestTooLarge(t *testing.T) {
	data := []byte(yamlPod + "# " + strings.Repeat("x", maxManifestSize))
	if _, err := ParseManifest(data, "/m/web.yaml", nodeName); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}

func TestManifestUID(t *testing.T) {
	uid := func(t *testing.T, data, path, node string) string {
		t.Helper()
		pod, err := ParseManifest([]byte(data), path, node)
		if err != nil {
			t.Fatal(err)
		}
		return string(pod.UID)
	}
	const path = "/etc/kubernetes/manifests/web.yaml"
	base := uid(t, yamlPod, path, nodeName)

	tests := []struct {
		name string
		data string
		path string
		node string
		same bool
	}{{
		name: "same content", data: yamlPod, path: path, node: nodeName, same: true,
	}, {
		name: "same pod as JSON",
		data: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
			"spec":{"containers":[{"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}]}]}}`,
		path: path, node: nodeName, same: true,
	}, {
		name: "comments and key order do not matter",
		data: "# web server\nkind: Pod\napiVersion: v1\n" + strings.TrimPrefix(yamlPod, "apiVersion: v1\nkind: Pod\n"),
		path: path, node: nodeName, same: true,
	}, {
		name: "fields written at their default",
		data: yamlPod + "      protocol: TCP\n    imagePullPolicy: IfNotPresent\n  restartPolicy: Always\n  dnsPolicy: ClusterFirst\n",
		path: path, node: nodeName, same: true,
	}, {
		name: "changed image", data: strings.Replace(yamlPod, "nginx:1.25", "nginx:1.26", 1), path: path, node: nodeName,
	}, {
		name: "changed label", data: strings.Replace(yamlPod, "app: web", "app: www", 1), path: path, node: nodeName,
	}, {
		name: "other file name", data: yamlPod, path: "/etc/kubernetes/manifests/web2.yaml", node: nodeName,
	}, {
		name: "other node", data: yamlPod, path: path, node: "node-2",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := uid(t, tt.data, tt.path, tt.node)
			if (got == base) != tt.same {
				t.Errorf("UID %s vs base %s: same = %v, want %v", got, base, got == base, tt.same)
			}
		})
	}
}
