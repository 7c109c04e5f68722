package metrics

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The registry label takes at most maxRegistries hosts; later ones count
// under otherRegistry, and hosts already labelled keep their own series.
func TestRegistryLabelIsBounded(t *testing.T) {
	m := New(nil)
	for i := range maxRegistries {
		m.ImagePulled(fmt.Sprintf("r%d.example", i), 10, time.Second, nil)
	}
	m.ImagePulled("late.example", 5, time.Second, errors.New("boom"))
	m.ImagePulled("late2.example", 5, time.Second, nil)
	m.ImagePulled("r0.example", 1, time.Second, errors.New("boom"))

	if n := testutil.CollectAndCount(m.pulls); n != maxRegistries+1 {
		t.Errorf("%d pull series, want %d", n, maxRegistries+1)
	}
	for _, c := range []struct {
		what string
		got  float64
		want float64
	}{
		{"pulls other", testutil.ToFloat64(m.pulls.WithLabelValues(otherRegistry)), 2},
		{"failures other", testutil.ToFloat64(m.pullFail.WithLabelValues(otherRegistry)), 1},
		{"bytes other", testutil.ToFloat64(m.pullBytes.WithLabelValues(otherRegistry)), 10},
		{"pulls r0", testutil.ToFloat64(m.pulls.WithLabelValues("r0.example")), 2},
		{"failures r0", testutil.ToFloat64(m.pullFail.WithLabelValues("r0.example")), 1},
		{"bytes r0", testutil.ToFloat64(m.pullBytes.WithLabelValues("r0.example")), 11},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// Only successful pulls are timed: r0 has one, other has one.
	if n := testutil.CollectAndCount(m.pullDur); n != maxRegistries+1 {
		t.Errorf("%d duration series, want %d", n, maxRegistries+1)
	}
}

// CNI errors exist for both ops before any call, and only failures move them.
func TestCNISeries(t *testing.T) {
	m := New(nil)
	if n := testutil.CollectAndCount(m.cniErrs); n != 2 {
		t.Fatalf("%d CNI error series before any call, want 2", n)
	}
	m.CNI("ADD", time.Millisecond, nil)
	m.CNI("DEL", time.Millisecond, errors.New("boom"))
	if v := testutil.ToFloat64(m.cniErrs.WithLabelValues("ADD")); v != 0 {
		t.Errorf("ADD errors %v", v)
	}
	if v := testutil.ToFloat64(m.cniErrs.WithLabelValues("DEL")); v != 1 {
		t.Errorf("DEL errors %v", v)
	}
}
