package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := time.Millisecond
	ten := []time.Duration{1 * ms, 2 * ms, 3 * ms, 4 * ms, 5 * ms, 6 * ms, 7 * ms, 8 * ms, 9 * ms, 10 * ms}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", []time.Duration{7 * ms}, 99, 7 * ms},
		{"min", ten, 0, 1 * ms},
		{"max", ten, 100, 10 * ms},
		{"above 100", ten, 150, 10 * ms},
		{"median of even count interpolates", ten, 50, 5500 * time.Microsecond},
		{"p90", ten, 90, 9100 * time.Microsecond},
		{"p99", ten, 99, 9910 * time.Microsecond},
		{"median of odd count is the middle", []time.Duration{1 * ms, 2 * ms, 30 * ms}, 50, 2 * ms},
		{"equal samples", []time.Duration{4 * ms, 4 * ms, 4 * ms}, 90, 4 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	in := []time.Duration{10 * ms, 1 * ms, 5 * ms, 2 * ms, 2 * ms}
	got := Summarize(in)
	want := Summary{N: 5, P50: 2 * ms, P90: 8 * ms, P99: 9800 * time.Microsecond, Max: 10 * ms, Mean: 4 * ms}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if in[0] != 10*ms {
		t.Error("Summarize sorted its input in place")
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("Summarize(nil) is not the zero Summary")
	}
}
