package bench

import (
	"strings"
	"testing"
	"time"
)

func testReport() *Report {
	ms := time.Millisecond
	const mib = 1 << 20
	s := func(p50, p90, p99, mx time.Duration) Summary {
		return Summary{N: 30, P50: p50, P90: p90, P99: p99, Max: mx}
	}
	lat := map[string]map[string]Summary{}
	for _, op := range Ops {
		lat[op] = map[string]Summary{
			"cradle":     s(5*ms, 6*ms, 7*ms, 8*ms),
			"containerd": s(10*ms, 12*ms, 15*ms, 150*ms),
		}
	}
	delete(lat[OpExecSync], "containerd")
	return &Report{
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Host: "2 CPUs, Linux 6.1.0",
		Iterations: 30, Warmup: 3, Pods: 2, Image: "busybox",
		Runtimes: []RuntimeResult{
			{Name: "cradle", Version: "cradle 1.0", DaemonPID: 10, Endpoint: "unix:///a.sock",
				Pulls: []Pull{{Image: "busybox", Duration: 1234 * ms}}, Idle: Mem{RSS: 41 * mib, PSS: 40 * mib}},
			{Name: "containerd", Version: "containerd v1.6.20", DaemonPID: 20, Endpoint: "unix:///b.sock",
				Pulls: []Pull{{Image: "busybox", Duration: 456 * ms}}, Idle: Mem{RSS: 45 * mib, PSS: 44 * mib}},
		},
		Variants: []VariantResult{{
			Name: "pid-pod", Title: "shared", Latency: lat,
			Memory: map[string]*MemResult{
				"cradle": {Pods: 2, DaemonIdle: Mem{RSS: 40 * mib, PSS: 30 * mib}, Daemon: Mem{RSS: 44 * mib, PSS: 32 * mib},
					Overhead: Mem{RSS: 6 * mib, PSS: 3 * mib}, ByComm: map[string]int{"conmon": 4, "pause": 2}},
				"containerd": {Pods: 2, DaemonIdle: Mem{RSS: 50 * mib, PSS: 40 * mib}, Daemon: Mem{RSS: 50 * mib, PSS: 40 * mib},
					Overhead: Mem{RSS: 30 * mib, PSS: 20 * mib}, ByComm: map[string]int{"containerd-shim": 2, "pause": 2}},
			},
		}},
		Errors: []string{"cradle ExecSync: boom"},
	}
}

func TestReportWrite(t *testing.T) {
	var b strings.Builder
	if err := testReport().Write(&b); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	const want = `cradle-bench 2026-01-02T03:04:05Z: 2 CPUs, Linux 6.1.0; 30 iterations per variant and runtime (after 3 warm-up), 2 pods for memory; image busybox
  cradle      cradle 1.0, pid 10, unix:///a.sock
  containerd  containerd v1.6.20, pid 20, unix:///b.sock

Image pulls (once, before the timed loop) and the daemon after them, MiB PSS (RSS):
  cradle      busybox 1234.0 ms; daemon 40.0 (41.0)
  containerd  busybox 456.0 ms; daemon 44.0 (45.0)

== pid-pod: shared

Latency in ms (n=30 per runtime; p99 of so few samples is close to the max)
  operation                       cradle p50   p90   p99   max  containerd p50   p90   p99    max  p50 cradle/containerd
  RunPodSandbox                         5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  CreateContainer                       5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  StartContainer                        5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  ExecSync                              5.00  6.00  7.00  8.00               -     -     -      -                      -
  StopContainer                         5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  RemoveContainer                       5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  StopPodSandbox                        5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  RemovePodSandbox                      5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  container start (create+start)        5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  container stop+remove                 5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  pod start (run+create+start)          5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50
  pod teardown (all four)               5.00  6.00  7.00  8.00            10.0  12.0  15.0  150.0                   0.50

Memory in MiB, PSS (RSS); 2 pods of one container each
                                                         cradle                   containerd
  daemon, no pods                                   30.0 (40.0)                  40.0 (50.0)
  daemon, 2 pods                                    32.0 (44.0)                  40.0 (50.0)
  daemon growth per pod                               1.0 (2.0)                    0.0 (0.0)
  per-pod processes                          2 conmon + 1 pause  1 containerd-shim + 1 pause
  per-pod processes, per pod                          1.5 (3.0)                  10.0 (15.0)
  total per pod (processes + daemon growth)           2.5 (5.0)                  10.0 (15.0)

== targets (#16): cradle against containerd, this run
  pid-pod: pod start p50 / containerd                               0.50  (target <= 0.60)  met
  pid-pod: per-pod processes, MiB PSS per pod                       1.50  (target <= 0.50)  MISSED

Errors:
  cradle ExecSync: boom
`
	if got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
}
