package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// kubeadmUnit reads the repository's copies of the packages' unit and
// drop-in, as kubeletunit does.
func kubeadmUnit(t *testing.T) *unit {
	t.Helper()
	u := newUnit()
	for _, name := range []string{"kubelet.service", "10-kubeadm.conf"} {
		path := filepath.Join("..", "..", "hack", "kubeadm", name)
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.apply(name, string(text)); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

func TestKubeadmUnitCommand(t *testing.T) {
	u := kubeadmUnit(t)
	if u.restart != "always" || u.restartSec != 10*time.Second {
		t.Errorf("Restart=%s RestartSec=%s, want always and 10s", u.restart, u.restartSec)
	}
	wantFiles := []envFile{{"/var/lib/kubelet/kubeadm-flags.env", true}, {"/etc/default/kubelet", true}}
	if !reflect.DeepEqual(u.envFiles, wantFiles) {
		t.Errorf("envFiles = %+v, want %+v", u.envFiles, wantFiles)
	}
	base := []string{"/usr/bin/kubelet",
		"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf",
		"--config=/var/lib/kubelet/config.yaml"}
	tests := []struct {
		name  string
		files []string // contents of the environment files that exist
		want  []string
	}{
		{name: "before kubeadm wrote anything", want: base},
		{name: "empty flags", files: []string{`KUBELET_KUBEADM_ARGS=""`}, want: base},
		{
			name:  "kubeadm's flags and the operator's extra args",
			files: []string{`KUBELET_KUBEADM_ARGS="--hostname-override=node-a --node-ip=192.0.2.10"`, "KUBELET_EXTRA_ARGS=--v=2\n"},
			want:  append(append([]string{}, base...), "--hostname-override=node-a", "--node-ip=192.0.2.10", "--v=2"),
		},
		{
			name:  "a later file overrides an earlier one and Environment=",
			files: []string{"KUBELET_CONFIG_ARGS=--config=/a.yaml", "# comment\nKUBELET_CONFIG_ARGS='--config=/b.yaml'"},
			want:  append(append([]string{}, base[:3]...), "--config=/b.yaml"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var envs []map[string]string
			for _, f := range tt.files {
				env, err := parseEnvFile(f)
				if err != nil {
					t.Fatal(err)
				}
				envs = append(envs, env)
			}
			got, err := u.command(envs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("command =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		want    unit
		wantErr bool
	}{
		{
			name:  "defaults; other sections ignored",
			files: []string{"[Unit]\nExecStart=/not/this\n[Service]\nExecStart=/bin/a b\n"},
			want:  unit{execStart: "/bin/a b", restart: "no", restartSec: 100 * time.Millisecond},
		},
		{
			name: "a drop-in clears ExecStart and Environment",
			files: []string{
				"[Service]\nExecStart=/bin/a\nEnvironment=A=1\nRestart=on-failure\nRestartSec=2.5",
				"[Service]\nExecStart=\nExecStart=/bin/b \\\n  --x\nEnvironment=\nEnvironment=\"B=2 3\" C=4\n",
			},
			want: unit{execStart: "/bin/b    --x", env: []string{"B=2 3", "C=4"}, restart: "on-failure", restartSec: 2500 * time.Millisecond},
		},
		{name: "two ExecStart", files: []string{"[Service]\nExecStart=/bin/a\nExecStart=/bin/b"}, wantErr: true},
		{name: "unknown Restart", files: []string{"[Service]\nRestart=on-abort"}, wantErr: true},
		{name: "not a setting", files: []string{"[Service]\nExecStart"}, wantErr: true},
		{name: "bad Environment", files: []string{"[Service]\nEnvironment=A"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit()
			var err error
			for i, f := range tt.files {
				if err = u.apply(string(rune('a'+i)), f); err != nil {
					break
				}
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(*u, tt.want) {
				t.Errorf("unit = %+v, want %+v", *u, tt.want)
			}
		})
	}
}

func TestCommandExpansion(t *testing.T) {
	u := newUnit()
	u.env = []string{"ONE=a b", "EMPTY="}
	tests := []struct {
		exec    string
		want    []string
		wantErr bool
	}{
		{exec: "/bin/x $ONE $EMPTY $UNSET end", want: []string{"/bin/x", "a", "b", "end"}},
		{exec: "/bin/x ${ONE} --v=${ONE}", want: []string{"/bin/x", "a b", "--v=a b"}},
		{exec: `/bin/x "quoted $ONE" $$HOME`, want: []string{"/bin/x", "quoted $ONE", "$HOME"}},
		{exec: "relative $ONE", wantErr: true},
		{exec: `/bin/x "open`, wantErr: true},
	}
	for _, tt := range tests {
		u.execStart = tt.exec
		got, err := u.command(nil)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v, wantErr %v", tt.exec, err, tt.wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: command = %q, want %q", tt.exec, got, tt.want)
		}
	}
}

func TestRestarts(t *testing.T) {
	for _, tt := range []struct {
		restart string
		failed  bool
		want    bool
	}{
		{"always", false, true}, {"always", true, true},
		{"on-failure", false, false}, {"on-failure", true, true},
		{"no", true, false},
	} {
		u := &unit{restart: tt.restart}
		if got := u.restarts(tt.failed); got != tt.want {
			t.Errorf("Restart=%s failed=%v: restarts = %v, want %v", tt.restart, tt.failed, got, tt.want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	got, err := parseEnvFile("# kubeadm\nA=\"x y\"\n; c\nexport B=plain value\nC=''\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "x y", "B": "plain value", "C": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env = %q, want %q", got, want)
	}
	if _, err := parseEnvFile("no equals sign"); err == nil {
		t.Error("a line without = parsed")
	}
}
