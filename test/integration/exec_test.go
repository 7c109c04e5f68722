package integration

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// reaperInit keeps a container running with a shell as PID 1 that reaps
// orphans, as an init should.
var reaperInit = []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"}

func (d *daemon) execSync(t *testing.T, id string, timeout int64, cmd ...string) (*runtimeapi.ExecSyncResponse, error) {
	t.Helper()
	return d.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
}

func TestExecSync(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "execsync")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("main", reaperInit...))

	resp, err := d.execSync(t, ctr, 10, "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 7")
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if resp.GetExitCode() != 7 || string(resp.GetStdout()) != "out1\nout2\n" || string(resp.GetStderr()) != "err1\n" {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 7, out1 out2, err1", resp.GetExitCode(), resp.GetStdout(), resp.GetStderr())
	}

	// Output larger than a pipe buffer and than one read, without a final newline.
	resp, err = d.execSync(t, ctr, 10, "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a")
	if err != nil || len(resp.GetStdout()) != 300000 || strings.Trim(string(resp.GetStdout()), "a") != "" {
		t.Errorf("large output: %v, %d bytes", err, len(resp.GetStdout()))
	}

	// The exec's environment and user come from the container's process.
	resp, err = d.execSync(t, ctr, 10, "sh", "-c", "echo $PATH; id -u")
	if err != nil || !strings.Contains(string(resp.GetStdout()), "/bin") || !strings.HasSuffix(string(resp.GetStdout()), "0\n") {
		t.Errorf("env and user: %v, %q", err, resp.GetStdout())
	}

	// A background child holding stdout doesn't keep ExecSync waiting.
	start := time.Now()
	resp, err = d.execSync(t, ctr, 0, "sh", "-c", "sleep 100 & echo started")
	if err != nil || string(resp.GetStdout()) != "started\n" || time.Since(start) > 5*time.Second {
		t.Errorf("background child: %v, %q after %s", err, resp.GetStdout(), time.Since(start))
	}

	// A missing binary is an error, not an exit code.
	if _, err := d.execSync(t, ctr, 10, "/no/such/binary"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing binary: got %v", err)
	}
}

func TestExecSyncTimeoutKillsEverything(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	for _, hostPID := range []bool{false, true} {
		// With the host's PID namespace, orphans go to the daemon (a child
		// subreaper) instead of the container's init.
		t.Run(map[bool]string{false: "own PID namespace", true: "host PID namespace"}[hostPID], func(t *testing.T) {
			podCfg := d.podConfig(t, "exectimeout")
			cfg := containerConfig("main", reaperInit...)
			if hostPID {
				podCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
				cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
			}
			pod := d.runPod(t, podCfg)
			ctr := d.startContainer(t, pod, podCfg, cfg)

			start := time.Now()
			_, err := d.execSync(t, ctr, 2, "sh", "-c", "sleep 30 & sleep 31 & wait")
			took := time.Since(start)
			if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "timed out") {
				t.Fatalf("want DeadlineExceeded naming the timeout, got %v", err)
			}
			if took < 2*time.Second || took > 4*time.Second {
				t.Errorf("ExecSync with timeout 2s returned after %s", took)
			}
			d.assertNoExecLeftovers(t, ctr, "sleep 30", "sleep 31")

			// A background child outliving a normal exec is reaped when it ends.
			resp, err := d.execSync(t, ctr, 5, "sh", "-c", "sleep 2 & echo bg")
			if err != nil || string(resp.GetStdout()) != "bg\n" {
				t.Errorf("exec with a background child: %v %q", err, resp.GetStdout())
			}
			// Polls until the child has ended and nothing is left of it.
			d.assertNoExecLeftovers(t, ctr, "sleep 2")

			// The container is unharmed.
			resp, err = d.execSync(t, ctr, 5, "echo", "still-here")
			if err != nil || string(resp.GetStdout()) != "still-here\n" {
				t.Errorf("exec after the timeout: %v %q", err, resp.GetStdout())
			}
		})
	}
}

// assertNoExecLeftovers waits until no process of the container runs one
// of cmdlines, and neither the daemon nor a process of the container keeps
// a zombie.
func (d *daemon) assertNoExecLeftovers(t *testing.T, ctr string, cmdlines ...string) {
	t.Helper()
	daemonPid := d.cmd.Process.Pid
	eventually(t, 6*time.Second, func() string {
		all := procs()
		inCtr := map[int]bool{}
		for _, p := range all {
			if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.pid)); err == nil && strings.Contains(string(cg), ctr) {
				inCtr[p.pid] = true
			}
		}
		var left []string
		for _, p := range all {
			for _, c := range cmdlines {
				if p.cmdline == c && inCtr[p.pid] {
					left = append(left, fmt.Sprintf("%d %q %c", p.pid, p.cmdline, p.state))
				}
			}
			// Zombies have no command line; the container's init here
			// reaps its own within a second.
			if p.state == 'Z' && (p.ppid == daemonPid || inCtr[p.ppid]) {
				left = append(left, fmt.Sprintf("zombie %d (%s) of %d", p.pid, p.comm, p.ppid))
			}
		}
		if len(left) > 0 {
			return "left over: " + strings.Join(left, ", ")
		}
		return ""
	})
}

func TestExecIntoStoppedOrUnknownContainer(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "execstopped")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("quick", "true"))
	d.waitState(t, ctr, runtimeapi.ContainerState_CONTAINER_EXITED)
	check := func(what string, err error, code codes.Code, words ...string) {
		t.Helper()
		if status.Code(err) != code {
			t.Errorf("%s: want %v, got %v", what, code, err)
			return
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message %q lacks %q", what, err, w)
			}
		}
	}
	_, err := d.execSync(t, ctr, 5, "echo", "hi")
	check("ExecSync", err, codes.FailedPrecondition, "CONTAINER_EXITED", "not running", ctr)
	_, err = d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sh"}, Stdout: true})
	check("Exec", err, codes.FailedPrecondition, "CONTAINER_EXITED", "not running")
	_, err = d.rt.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: ctr, Stdout: true})
	check("Attach", err, codes.FailedPrecondition, "CONTAINER_EXITED", "not running")

	_, err = d.execSync(t, "no-such-container", 5, "echo")
	check("ExecSync unknown", err, codes.NotFound, "container_id")
	_, err = d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: "no-such-container", Cmd: []string{"sh"}, Stdout: true})
	check("Exec unknown", err, codes.NotFound, "container_id")
	_, err = d.rt.PortForward(ctx(t), &runtimeapi.PortForwardRequest{PodSandboxId: "no-such-pod", Port: []int32{80}})
	check("PortForward unknown", err, codes.NotFound, "pod_sandbox_id")
}

func TestExecStreaming(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "execstream")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("main", reaperInit...))

	t.Run("pipes", func(t *testing.T) {
		resp, err := d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sh", "-c", "cat; echo err >&2; exit 3"}, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.GetUrl(), "http://127.0.0.1:") || strings.HasPrefix(resp.GetUrl(), "http://127.0.0.1:0/") {
			t.Errorf("URL %q is not on 127.0.0.1 with a real port", resp.GetUrl())
		}
		s := openSession(t, resp.GetUrl(), true, true, true, false)
		if _, err := s.stdin.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		s.stdin.Close()
		code, msg := s.wait(t)
		if code != 3 {
			t.Errorf("exit code %d (%s), want 3", code, msg)
		}
		if out, errOut := s.out.String(), s.errOut.String(); out != "hello\n" || errOut != "err\n" {
			t.Errorf("stdout %q, stderr %q", out, errOut)
		}
	})

	t.Run("tty", func(t *testing.T) {
		resp, err := d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sh"}, Tty: true, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		s := openSession(t, resp.GetUrl(), true, true, false, true)
		s.resizeTo(t, 100, 30)
		s.typeUntil(t, "stty size\n", "30 100")
		s.resizeTo(t, 120, 40)
		s.typeUntil(t, "stty size\n", "40 120")
		s.typeUntil(t, "echo $TERM-$((6*7))\n", "xterm-42")
		if _, err := s.stdin.Write([]byte("exit 5\n")); err != nil {
			t.Fatal(err)
		}
		if code, msg := s.wait(t); code != 5 {
			t.Errorf("exit code %d (%s), want 5", code, msg)
		}
	})
}

func TestAttach(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "attach")
	pod := d.runPod(t, podCfg)

	t.Run("tty", func(t *testing.T) {
		cfg := containerConfig("tty", "sh")
		cfg.Tty, cfg.Stdin = true, true
		ctr := d.startContainer(t, pod, podCfg, cfg)
		resp, err := d.rt.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: ctr, Tty: true, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		s := openSession(t, resp.GetUrl(), true, true, false, true)
		s.resizeTo(t, 100, 30)
		s.typeUntil(t, "stty size\n", "30 100")
		s.resizeTo(t, 90, 25)
		s.typeUntil(t, "stty size\n", "25 90")
		s.typeUntil(t, "echo attached-$((6*7))\n", "attached-42")
		s.conn.Close() // detach
		// The shell outlives its client: a second client, attached after
		// the first is gone, still talks to it.
		again, err := d.rt.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: ctr, Tty: true, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		s2 := openSession(t, again.GetUrl(), true, true, false, true)
		s2.typeUntil(t, "echo again-$((6*7))\n", "again-42")
		s2.conn.Close()
		if st := d.containerStatus(t, ctr).GetState(); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container is %v after the clients detached", st)
		}
	})

	t.Run("stdin once", func(t *testing.T) {
		cfg := containerConfig("once", "sh", "-c", `read line; echo "got $line"; echo oops >&2`)
		cfg.Stdin, cfg.StdinOnce = true, true
		ctr := d.startContainer(t, pod, podCfg, cfg)
		resp, err := d.rt.Attach(ctx(t), &runtimeapi.AttachRequest{ContainerId: ctr, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		s := openSession(t, resp.GetUrl(), true, true, true, false)
		if _, err := s.stdin.Write([]byte("x\n")); err != nil {
			t.Fatal(err)
		}
		s.stdin.Close()
		if code, msg := s.wait(t); code != 0 {
			t.Errorf("attach ended with %d: %s", code, msg)
		}
		if out, errOut := s.out.String(), s.errOut.String(); out != "got x\n" || errOut != "oops\n" {
			t.Errorf("stdout %q, stderr %q", out, errOut)
		}
	})
}

func dialSPDY(rawURL, protocol string) (httpstream.Connection, error) {
	return dialSPDYTLS(rawURL, protocol, nil)
}

// dialSPDYTLS dials with tlsCfg for an https URL (nil: the system's roots).
func dialSPDYTLS(rawURL, protocol string, tlsCfg *tls.Config) (httpstream.Connection, error) {
	rt, err := spdy.NewRoundTripper(tlsCfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	return rt.NewConnection(resp)
}

// session is a client of the remote command protocol v4 (what kubectl
// exec and attach speak to the kubelet, and the kubelet to the runtime).
type session struct {
	conn                                httpstream.Connection
	errs, stdin, stdout, stderr, resize httpstream.Stream
	out, errOut                         syncBuffer
	outDone, errDone                    chan struct{}
}

func openSession(t *testing.T, url string, stdin, stdout, stderr, tty bool) *session {
	t.Helper()
	return openSessionTLS(t, nil, url, stdin, stdout, stderr, tty)
}

func openSessionTLS(t *testing.T, tlsCfg *tls.Config, url string, stdin, stdout, stderr, tty bool) *session {
	t.Helper()
	conn, err := dialSPDYTLS(url, "v4.channel.k8s.io", tlsCfg)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &session{conn: conn, outDone: make(chan struct{}), errDone: make(chan struct{})}
	create := func(kind string) httpstream.Stream {
		h := http.Header{}
		h.Set("streamType", kind)
		st, err := conn.CreateStream(h)
		if err != nil {
			t.Fatalf("create %s stream: %v", kind, err)
		}
		return st
	}
	s.errs = create("error")
	if stdin {
		s.stdin = create("stdin")
	}
	copyTo := func(b *syncBuffer, st httpstream.Stream, done chan struct{}) {
		go func() { _, _ = io.Copy(b, st); close(done) }()
	}
	if stdout {
		s.stdout = create("stdout")
		copyTo(&s.out, s.stdout, s.outDone)
	} else {
		close(s.outDone)
	}
	if stderr {
		s.stderr = create("stderr")
		copyTo(&s.errOut, s.stderr, s.errDone)
	} else {
		close(s.errDone)
	}
	if tty {
		s.resize = create("resize")
	}
	return s
}

func (s *session) resizeTo(t *testing.T, width, height uint16) {
	t.Helper()
	b, _ := json.Marshal(map[string]uint16{"Width": width, "Height": height})
	if _, err := s.resize.Write(b); err != nil {
		t.Fatalf("resize: %v", err)
	}
}

// typeUntil sends input until the output shows want (a resize reaches the
// terminal asynchronously).
func (s *session) typeUntil(t *testing.T, input, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never showed %q: %q", want, s.out.String())
		}
		if _, err := s.stdin.Write([]byte(input)); err != nil {
			t.Fatalf("write stdin: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// wait reads the final status: the exit code, and the message of a failure.
func (s *session) wait(t *testing.T) (int, string) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() { b, err := io.ReadAll(s.errs); got <- result{b, err} }()
	var r result
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no status within 30s")
	}
	for _, done := range []chan struct{}{s.outDone, s.errDone} {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("output streams did not end")
		}
	}
	var st struct {
		Status, Message, Reason string
		Details                 struct {
			Causes []struct{ Reason, Message string }
		}
	}
	if err := json.Unmarshal(r.b, &st); err != nil {
		t.Fatalf("status %q (%v): %v", r.b, r.err, err)
	}
	if st.Status == "Success" {
		return 0, ""
	}
	for _, c := range st.Details.Causes {
		if c.Reason == "ExitCode" {
			n, _ := strconv.Atoi(c.Message)
			return n, st.Message
		}
	}
	return -1, st.Message
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type proc struct {
	pid, ppid     int
	state         byte
	comm, cmdline string
}

// procs lists the host's processes.
func procs() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || end+2 >= len(s) {
			continue
		}
		f := strings.Fields(s[end+2:])
		if len(f) < 2 {
			continue
		}
		p := proc{pid: pid, state: f[0][0], comm: s[open+1 : end]}
		p.ppid, _ = strconv.Atoi(f[1])
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		out = append(out, p)
	}
	return out
}
