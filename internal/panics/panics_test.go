package panics

import (
	"errors"
	"strings"
	"testing"
)

type counter int

func (c *counter) Inc() { *c++ }

func TestDo(t *testing.T) {
	plain := errors.New("plain")
	var nilMap map[string]int
	tests := []struct {
		name       string
		f          func() error
		wantErr    error // matched with errors.Is, when set
		wantPanic  bool
		wantInMsg  string
		wantCounts int
	}{
		{name: "no error", f: func() error { return nil }},
		{name: "error passes through", f: func() error { return plain }, wantErr: plain},
		{name: "panic with a value", f: func() error { panic("boom") }, wantPanic: true, wantInMsg: "boom", wantCounts: 1},
		{name: "runtime error", f: func() error { nilMap["x"] = 1; return nil }, wantPanic: true,
			wantInMsg: "assignment to entry in nil map", wantCounts: 1},
		{name: "panic with an error", f: func() error { panic(plain) }, wantErr: plain, wantPanic: true, wantCounts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			err := Do(&c, tt.f)
			var perr *Error
			if got := errors.As(err, &perr); got != tt.wantPanic {
				t.Fatalf("err %v: panic recovered = %v, want %v", err, got, tt.wantPanic)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v does not wrap %v", err, tt.wantErr)
			}
			if !tt.wantPanic && tt.wantErr == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if tt.wantInMsg != "" && !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("err %q lacks %q", err, tt.wantInMsg)
			}
			if perr != nil && !strings.Contains(string(perr.Stack), "panics_test.go") {
				t.Errorf("stack does not show where it panicked:\n%s", perr.Stack)
			}
			if int(c) != tt.wantCounts {
				t.Errorf("counted %d panics, want %d", c, tt.wantCounts)
			}
		})
	}
}

func TestDoWithoutCounter(t *testing.T) {
	if err := Do(nil, func() error { panic("x") }); err == nil {
		t.Fatal("panic not returned")
	}
}
