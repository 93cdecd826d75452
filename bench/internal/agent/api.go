package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// APIClient calls an agent's kubelet API (:Port) with the API server's
// kubelet-client certificate, as the API server would. The serving
// certificates are self-signed, so they are not verified.
type APIClient struct {
	base string
	http *http.Client
}

// NewAPIClient returns a client for https://127.0.0.1:port.
func NewAPIClient(port int32, certFile, keyFile string) (*APIClient, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true},
		MaxIdleConnsPerHost: 4,
	}
	return &APIClient{
		base: fmt.Sprintf("https://127.0.0.1:%d", port),
		http: &http.Client{Transport: tr, Timeout: 2 * time.Minute},
	}, nil
}

// Get fetches path and returns the body and how long the request took,
// from sending it to the last byte of the body.
func (c *APIClient) Get(ctx context.Context, path string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return nil, took, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, took, fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, body)
	}
	return body, took, nil
}

// OpStats is the sum and count of a histogram per label value.
type OpStats map[string]struct{ Sum, Count float64 }

// Histograms reads the histogram family name from the agent's /metrics
// and sums it by the value of label (all series together under "" when
// label is empty).
func (c *APIClient) Histograms(ctx context.Context, name, label string) (OpStats, error) {
	body, _, err := c.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	return parseHistograms(string(body), name, label)
}

func parseHistograms(text, name, label string) (OpStats, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := OpStats{}
	fam, ok := fams[name]
	if !ok || fam.GetType() != dto.MetricType_HISTOGRAM {
		return out, nil
	}
	for _, m := range fam.Metric {
		key := ""
		if label != "" {
			for _, l := range m.Label {
				if l.GetName() == label {
					key = l.GetValue()
				}
			}
		}
		s := out[key]
		s.Sum += m.GetHistogram().GetSampleSum()
		s.Count += float64(m.GetHistogram().GetSampleCount())
		out[key] = s
	}
	return out, nil
}

// Sub returns o − before, per key.
func (o OpStats) Sub(before OpStats) OpStats {
	out := OpStats{}
	for k, v := range o {
		b := before[k]
		v.Sum -= b.Sum
		v.Count -= b.Count
		if v.Count > 0 {
			out[k] = v
		}
	}
	return out
}
