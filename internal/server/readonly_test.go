package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type podList []*v1.Pod

func (l podList) Pods() []*v1.Pod { return l }

func TestReadOnlyHandler(t *testing.T) {
	pods := podList{{ObjectMeta: metav1.ObjectMeta{Name: "web-node1", Namespace: "default", UID: "u1"},
		Status: v1.PodStatus{Phase: v1.PodRunning}}}
	tests := []struct {
		name     string
		path     string
		health   error
		wantCode int
		check    func(t *testing.T, body string)
	}{
		{"healthy", "/healthz", nil, 200, func(t *testing.T, body string) {
			if body != "ok" {
				t.Errorf("body %q, want ok", body)
			}
		}},
		{"unhealthy", "/healthz", errors.New("runtime down"), 500, func(t *testing.T, body string) {
			if !strings.Contains(body, "runtime down") {
				t.Errorf("body %q does not say why", body)
			}
		}},
		{"pods", "/pods", nil, 200, func(t *testing.T, body string) {
			var list v1.PodList
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatal(err)
			}
			if list.Kind != "PodList" || len(list.Items) != 1 || list.Items[0].Status.Phase != v1.PodRunning {
				t.Errorf("unexpected list %+v", list)
			}
		}},
		{"unknown path", "/exec/x", nil, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewReadOnlyHandler(pods, func() error { return tt.health })
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if tt.check != nil {
				tt.check(t, rec.Body.String())
			}
		})
	}
}
