package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The timed operations, in the order of a pod's life, and the composites
// the table adds up from them per iteration. Runtimes split the work
// differently between calls (cradle runs `runc create` in CreateContainer,
// containerd in StartContainer), so the composites are what compares.
const (
	OpRunPodSandbox    = "RunPodSandbox"
	OpCreateContainer  = "CreateContainer"
	OpStartContainer   = "StartContainer"
	OpExecSync         = "ExecSync"
	OpStopContainer    = "StopContainer"
	OpRemoveContainer  = "RemoveContainer"
	OpStopPodSandbox   = "StopPodSandbox"
	OpRemovePodSandbox = "RemovePodSandbox"
	OpContainerStart   = "container start (create+start)"
	OpContainerRemove  = "container stop+remove"
	OpPodStart         = "pod start (run+create+start)"
	OpPodTeardown      = "pod teardown (all four)"
)

// Ops is the row order of the latency table.
var Ops = []string{
	OpRunPodSandbox, OpCreateContainer, OpStartContainer, OpExecSync,
	OpStopContainer, OpRemoveContainer, OpStopPodSandbox, OpRemovePodSandbox,
	OpContainerStart, OpContainerRemove, OpPodStart, OpPodTeardown,
}

// Report is a whole run's result.
type Report struct {
	Started    time.Time       `json:"started"`
	Host       string          `json:"host"` // e.g. "2 CPUs, Linux 6.1.0"
	Iterations int             `json:"iterations"`
	Warmup     int             `json:"warmup"`
	Pods       int             `json:"pods"`
	Image      string          `json:"image"`
	Runtimes   []RuntimeResult `json:"runtimes"`
	Variants   []VariantResult `json:"variants"`
	Floor      *FloorResult    `json:"floor,omitempty"`
	Loads      []LoadResults   `json:"loads,omitempty"`
	Pull       *PullResult     `json:"pull,omitempty"`
	Kubelet    *KubeletResults `json:"kubelet,omitempty"`
	Errors     []string        `json:"errors,omitempty"`
	Leaks      []string        `json:"leaks,omitempty"`
}

// LoadResults is one load on every runtime, by runtime name.
type LoadResults struct {
	Load     Load                   `json:"load"`
	Runtimes map[string]*LoadResult `json:"runtimes"`
}

// RuntimeResult is what a run learned about one runtime.
type RuntimeResult struct {
	Name      string `json:"name"`
	Endpoint  string `json:"endpoint"`
	Version   string `json:"version"` // RuntimeName RuntimeVersion
	DaemonPID int    `json:"daemon_pid"`
	Pulls     []Pull `json:"pulls"`
	Idle      Mem    `json:"daemon_idle"` // after the pulls, before any pod
}

// Pull is one image pull, timed apart from the table.
type Pull struct {
	Image    string        `json:"image"`
	Duration time.Duration `json:"duration_ns"`
}

// VariantResult is one pod shape's latencies and memory, per runtime name.
type VariantResult struct {
	Name    string                        `json:"name"`
	Title   string                        `json:"title"`
	Latency map[string]map[string]Summary `json:"latency"` // op -> runtime -> summary
	Memory  map[string]*MemResult         `json:"memory"`  // runtime -> memory
}

// ms formats a duration in milliseconds, with two decimals below 10 ms.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// mib formats bytes in MiB with one decimal.
func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// memCell is "PSS (RSS)" in MiB.
func memCell(m Mem) string { return mib(m.PSS) + " (" + mib(m.RSS) + ")" }

// Write prints the report as plain-text tables: per variant, the latency
// percentiles of each operation with the runtimes side by side (and the
// ratio of the first runtime's p50 to the second's when there are two),
// then the memory.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	names := make([]string, len(r.Runtimes))
	for i, rt := range r.Runtimes {
		names[i] = rt.Name
	}
	fmt.Fprintf(&b, "cradle-bench %s: %s; %d iterations per variant and runtime (after %d warm-up), %d pods for memory; image %s\n",
		r.Started.UTC().Format(time.RFC3339), r.Host, r.Iterations, r.Warmup, r.Pods, r.Image)
	for _, rt := range r.Runtimes {
		fmt.Fprintf(&b, "  %-11s %s, pid %d, %s\n", rt.Name, rt.Version, rt.DaemonPID, rt.Endpoint)
	}
	b.WriteString("\nImage pulls (once, before the timed loop) and the daemon after them, MiB PSS (RSS):\n")
	for _, rt := range r.Runtimes {
		var parts []string
		for _, p := range rt.Pulls {
			parts = append(parts, fmt.Sprintf("%s %s ms", p.Image, ms(p.Duration)))
		}
		fmt.Fprintf(&b, "  %-11s %s; daemon %s\n", rt.Name, strings.Join(parts, ", "), memCell(rt.Idle))
	}
	for _, v := range r.Variants {
		fmt.Fprintf(&b, "\n== %s: %s\n", v.Name, v.Title)
		writeLatency(&b, v, names)
		if len(v.Memory) > 0 {
			writeMemory(&b, v, r.Runtimes, r.Pods)
		}
	}
	r.writeFloor(&b, names)
	r.writeLoads(&b, names)
	r.writePull(&b, names)
	r.writeKubelet(&b, names)
	r.writeTargets(&b, names)
	if len(r.Errors) > 0 {
		b.WriteString("\nErrors:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if len(r.Leaks) > 0 {
		b.WriteString("\nLeft behind:\n")
		for _, e := range r.Leaks {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func writeLatency(b *strings.Builder, v VariantResult, names []string) {
	n := 0
	for _, name := range names {
		if s, ok := v.Latency[OpRunPodSandbox][name]; ok {
			n = max(n, s.N)
		}
	}
	fmt.Fprintf(b, "\nLatency in ms (n=%d per runtime; p99 of so few samples is close to the max)\n", n)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	lw := len("operation")
	for _, op := range Ops {
		lw = max(lw, len(op))
	}
	header := pad("operation", lw) + "\t"
	for _, name := range names {
		header += fmt.Sprintf("%s p50\tp90\tp99\tmax\t", name)
	}
	ratio := len(names) == 2
	if ratio {
		header += fmt.Sprintf("p50 %s/%s\t", names[0], names[1])
	}
	fmt.Fprintln(tw, header)
	for _, op := range Ops {
		row := pad(op, lw) + "\t"
		for _, name := range names {
			s, ok := v.Latency[op][name]
			if !ok || s.N == 0 {
				row += "-\t-\t-\t-\t"
				continue
			}
			row += fmt.Sprintf("%s\t%s\t%s\t%s\t", ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
		}
		if ratio {
			a, b2 := v.Latency[op][names[0]], v.Latency[op][names[1]]
			if a.N > 0 && b2.N > 0 && b2.P50 > 0 {
				row += fmt.Sprintf("%.2f\t", float64(a.P50)/float64(b2.P50))
			} else {
				row += "-\t"
			}
		}
		fmt.Fprintln(tw, row)
	}
	_ = tw.Flush()
}

func writeMemory(b *strings.Builder, v VariantResult, rts []RuntimeResult, pods int) {
	fmt.Fprintf(b, "\nMemory in MiB, PSS (RSS); %d pods of one container each\n", pods)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := []struct {
		label string
		cell  func(m *MemResult) string
	}{
		{"daemon, no pods", func(m *MemResult) string { return memCell(m.DaemonIdle) }},
		{fmt.Sprintf("daemon, %d pods", pods), func(m *MemResult) string { return memCell(m.Daemon) }},
		{"daemon growth per pod", func(m *MemResult) string { return memCell(m.DaemonGrowthPerPod()) }},
		{"per-pod processes", func(m *MemResult) string { return m.ProcsPerPod() }},
		{"per-pod processes, per pod", func(m *MemResult) string { return memCell(m.OverheadPerPod()) }},
		{"total per pod (processes + daemon growth)", func(m *MemResult) string { return memCell(m.TotalPerPod()) }},
	}
	lw := 0
	for _, row := range rows {
		lw = max(lw, len(row.label))
	}
	header := pad("", lw) + "\t"
	for _, rt := range rts {
		header += rt.Name + "\t"
	}
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		line := pad(row.label, lw) + "\t"
		for _, rt := range rts {
			m := v.Memory[rt.Name]
			if m == nil {
				line += "-\t"
				continue
			}
			line += row.cell(m) + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
}

// pad left-aligns a label in a right-aligned table.
func pad(s string, w int) string { return fmt.Sprintf("%-*s", w, s) }
