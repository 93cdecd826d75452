package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// checkHistogram checks the sample count and sum of a histogram.
func checkHistogram(t *testing.T, h prometheus.Histogram, count uint64, sum float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram(); got.GetSampleCount() != count || got.GetSampleSum() != sum {
		t.Errorf("histogram has %d samples summing to %v, want %d and %v", got.GetSampleCount(), got.GetSampleSum(), count, sum)
	}
}
