package bench

import (
	"fmt"
	"io"
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The kubelet's pod start histograms (k8s.io/kubernetes pkg/kubelet/metrics).
const (
	// From creation to running as seen on the API server's watch, less image
	// pulls: the SLI. The kubelet leaves static pods out of it.
	MetricPodStartSLI = "kubelet_pod_start_sli_duration_seconds"
	// From the kubelet first seeing a pod to its sync finding it running;
	// static pods included.
	MetricPodStart = "kubelet_pod_start_duration_seconds"
)

// HistQuantile is a quantile estimated from a Prometheus histogram.
type HistQuantile struct {
	Count uint64  `json:"count"`
	Value float64 `json:"seconds"` // 0 when Count is 0
	// Bucket bounds the value lies between: a histogram says no more.
	Lower float64 `json:"bucket_lower"`
	Upper float64 `json:"bucket_upper"`
}

// parseMetrics reads the Prometheus text format.
func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}

// histogramQuantile estimates the q-quantile (0..1) of the histogram named
// name, as PromQL's histogram_quantile does: linear interpolation within
// the bucket holding the rank, the first bucket starting at 0. A histogram
// that is missing or empty gives Count 0.
func histogramQuantile(fams map[string]*dto.MetricFamily, name string, q float64) (HistQuantile, error) {
	f := fams[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return HistQuantile{}, nil
	}
	if f.GetType() != dto.MetricType_HISTOGRAM {
		return HistQuantile{}, fmt.Errorf("%s: a %s, not a histogram", name, f.GetType())
	}
	if len(f.GetMetric()) != 1 {
		return HistQuantile{}, fmt.Errorf("%s: %d series, want one", name, len(f.GetMetric()))
	}
	h := f.GetMetric()[0].GetHistogram()
	res := HistQuantile{Count: h.GetSampleCount()}
	if res.Count == 0 {
		return res, nil
	}
	bs := append([]*dto.Bucket(nil), h.GetBucket()...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
	rank := q * float64(res.Count)
	lower, below := 0.0, uint64(0)
	for _, b := range bs {
		if cum := b.GetCumulativeCount(); float64(cum) >= rank {
			in := cum - below
			res.Lower, res.Upper = lower, b.GetUpperBound()
			if math.IsInf(res.Upper, 1) || in == 0 {
				res.Value = lower // PromQL gives the highest finite bound too
				return res, nil
			}
			res.Value = lower + (res.Upper-lower)*(rank-float64(below))/float64(in)
			return res, nil
		}
		lower, below = b.GetUpperBound(), b.GetCumulativeCount()
	}
	// Above every bucket bound (no +Inf bucket in the text): the last bound.
	res.Lower, res.Upper, res.Value = lower, math.Inf(1), lower
	return res, nil
}
