package kerneltunables

import (
	"errors"
	"io/fs"
	"maps"
	"slices"
	"testing"

	"k8s.io/klog/v2"
)

// fakeSysctl holds values; set fails with setErr when it is set.
type fakeSysctl struct {
	values map[string]int
	setErr error
	sets   []string
}

func (f *fakeSysctl) GetSysctl(name string) (int, error) {
	v, ok := f.values[name]
	if !ok {
		return 0, fs.ErrNotExist
	}
	return v, nil
}

func (f *fakeSysctl) SetSysctl(name string, value int) error {
	f.sets = append(f.sets, name)
	if f.setErr != nil {
		return f.setErr
	}
	f.values[name] = value
	return nil
}

func wanted() map[string]int {
	m := map[string]int{}
	for _, t := range Desired() {
		m[t.Name] = t.Value
	}
	return m
}

func TestEnsure(t *testing.T) {
	differing := func() map[string]int {
		m := wanted()
		m["vm/overcommit_memory"] = 0
		m["kernel/panic"] = 0
		return m
	}
	tests := []struct {
		name     string
		values   map[string]int
		protect  bool
		setErr   error
		wantErr  string
		wantSets []string
		want     map[string]int
	}{
		{name: "as wanted, protected", values: wanted(), protect: true, want: wanted()},
		{name: "as wanted, not protected", values: wanted(), want: wanted()},
		{name: "differing, protected: refused, nothing written", values: differing(), protect: true,
			wantErr: "invalid kernel flag: vm/overcommit_memory, expected value: 1, actual value: 0\n" +
				"invalid kernel flag: kernel/panic, expected value: 10, actual value: 0",
			want: differing()},
		{name: "differing, not protected: set", values: differing(),
			wantSets: []string{"vm/overcommit_memory", "kernel/panic"}, want: wanted()},
		{name: "differing, not permitted: left, no error", values: differing(), setErr: fs.ErrPermission,
			wantSets: []string{"vm/overcommit_memory", "kernel/panic"}, want: differing()},
		{name: "differing, other write failure", values: differing(), setErr: errors.New("disk on fire"),
			wantErr:  "set kernel flag vm/overcommit_memory: disk on fire\nset kernel flag kernel/panic: disk on fire",
			wantSets: []string{"vm/overcommit_memory", "kernel/panic"}, want: differing()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSysctl{values: maps.Clone(tt.values), setErr: tt.setErr}
			err := Ensure(klog.Background(), s, tt.protect)
			if got := ""; err != nil {
				got = err.Error()
				if got != tt.wantErr {
					t.Errorf("err = %q, want %q", got, tt.wantErr)
				}
			} else if tt.wantErr != "" {
				t.Errorf("no error, want %q", tt.wantErr)
			}
			if !slices.Equal(s.sets, tt.wantSets) {
				t.Errorf("set %v, want %v", s.sets, tt.wantSets)
			}
			if !maps.Equal(s.values, tt.want) {
				t.Errorf("values %v, want %v", s.values, tt.want)
			}
		})
	}

	// A tunable the kernel does not have is an error.
	m := wanted()
	delete(m, "kernel/keys/root_maxbytes")
	if err := Ensure(klog.Background(), &fakeSysctl{values: m}, false); err == nil {
		t.Error("missing tunable: no error")
	}
}
