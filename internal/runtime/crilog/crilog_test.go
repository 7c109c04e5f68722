package crilog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixedClock ticks one millisecond per record.
func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

func open(t *testing.T, max int64) (*Writer, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "logs", "ctr.log")
	w, err := Open(p, max)
	if err != nil {
		t.Fatal(err)
	}
	w.now = fixedClock()
	t.Cleanup(func() { w.Close() })
	return w, p
}

func lines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// body drops the timestamp.
func body(l string) string {
	_, rest, _ := strings.Cut(l, " ")
	return rest
}

func bodies(t *testing.T, p string) []string {
	var out []string
	for _, l := range lines(t, p) {
		out = append(out, body(l))
	}
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n got %q\nwant %q", got, want)
	}
}

func TestLinesInAnyChunking(t *testing.T) {
	w, p := open(t, 0)
	out := w.Stream(Stdout)
	for _, chunk := range []string{"he", "llo\nwor", "ld\n", "\n", "a\nb\nc"} {
		if _, err := out.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, bodies(t, p), []string{"stdout F hello", "stdout F world", "stdout F ", "stdout F a", "stdout F b"})
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	equal(t, bodies(t, p)[5:], []string{"stdout P c"})
	if err := out.Flush(); err != nil { // nothing held: no record
		t.Fatal(err)
	}
	if n := len(lines(t, p)); n != 6 {
		t.Fatalf("%d records after a second flush", n)
	}
}

func TestStreamsKeepTheirOwnPartialLines(t *testing.T) {
	w, p := open(t, 0)
	out, errs := w.Stream(Stdout), w.Stream(Stderr)
	_, _ = out.Write([]byte("out-"))
	_, _ = errs.Write([]byte("err line\n"))
	_, _ = out.Write([]byte("line\r\n"))
	equal(t, bodies(t, p), []string{"stderr F err line", "stdout F out-line"})
}

func TestLongLinesSplitIntoPartials(t *testing.T) {
	w, p := open(t, 0)
	out := w.Stream(Stdout)
	long := strings.Repeat("x", 2*MaxLine+10)
	// Written in small pieces: the held buffer is cut at MaxLine.
	for i := 0; i < len(long); i += 1000 {
		_, _ = out.Write([]byte(long[i:min(i+1000, len(long))]))
	}
	_, _ = out.Write([]byte("\n"))
	// In one piece with the newline.
	_, _ = out.Write([]byte(long + "\n"))
	want := []string{
		"stdout P " + long[:MaxLine], "stdout P " + long[:MaxLine], "stdout F " + long[:10],
		"stdout P " + long[:MaxLine], "stdout P " + long[:MaxLine], "stdout F " + long[:10],
	}
	equal(t, bodies(t, p), want)
}

func TestTimestamps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ctr.log")
	w, err := Open(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := time.Now()
	_, _ = w.Stream(Stdout).Write([]byte("a\nb\n"))
	after := time.Now()
	var prev time.Time
	for _, l := range lines(t, p) {
		ts, _, _ := strings.Cut(l, " ")
		if len(ts) != len(before.Format(TimeFormat)) {
			t.Fatalf("timestamp %q is not fixed-width", ts)
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("timestamp %q: %v", ts, err)
		}
		if at.Before(before.Truncate(time.Nanosecond)) || at.After(after) || at.Before(prev) {
			t.Fatalf("timestamp %v out of order (window %v..%v, previous %v)", at, before, after, prev)
		}
		prev = at
	}
}

func TestReopenAfterRotation(t *testing.T) {
	w, p := open(t, 0)
	out := w.Stream(Stdout)
	_, _ = out.Write([]byte("one\n"))
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	_, _ = out.Write([]byte("two\n")) // still the renamed file
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	_, _ = out.Write([]byte("three\n"))
	equal(t, bodies(t, p+".1"), []string{"stdout F one", "stdout F two"})
	equal(t, bodies(t, p), []string{"stdout F three"})
	// Reopen without a rotation appends.
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	_, _ = out.Write([]byte("four\n"))
	equal(t, bodies(t, p), []string{"stdout F three", "stdout F four"})
}

func TestSizeLimitStartsOver(t *testing.T) {
	rec := len(time.Now().Format(TimeFormat)) + len(" stdout F 0123456789\n")
	w, p := open(t, int64(3*rec))
	out := w.Stream(Stdout)
	for i := 0; i < 4; i++ {
		_, _ = out.Write([]byte("0123456789\n"))
	}
	if n := len(lines(t, p)); n != 1 {
		t.Fatalf("%d records after passing the limit, want 1", n)
	}
	fi, _ := os.Stat(p)
	if fi.Size() != int64(rec) {
		t.Fatalf("size %d, want %d", fi.Size(), rec)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
	for i := 0; i < 2; i++ {
		_, _ = out.Write([]byte("0123456789\n"))
	}
	if n := len(lines(t, p)); n != 3 {
		t.Fatalf("%d records, want 3", n)
	}
}

func TestClosedDropsRecords(t *testing.T) {
	w, p := open(t, 0)
	out := w.Stream(Stdout)
	_ = w.Close()
	if _, err := out.Write([]byte("late\n")); err == nil {
		t.Fatal("write after Close succeeded")
	}
	if n := len(lines(t, p)); n != 0 {
		t.Fatalf("%d records after Close", n)
	}
}
