package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPortForward(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)

	t.Run("pod network", func(t *testing.T) {
		podCfg := d.podConfig(t, "portfwd")
		pod := d.runPod(t, podCfg)
		d.startContainer(t, pod, podCfg, containerConfig("nc", "nc", "-ll", "-p", "8080", "-e", "echo", "hi from the pod"))
		eventually(t, 10*time.Second, func() string {
			got, err := d.forwardOnce(t, pod, 8080)
			if err != nil {
				return err.Error()
			}
			if got != "hi from the pod\n" {
				return fmt.Sprintf("read %q", got)
			}
			return ""
		})
	})

	t.Run("host network", func(t *testing.T) {
		podCfg := d.podConfig(t, "portfwdhost")
		podCfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		pod := d.runPod(t, podCfg)
		// Listening in the test's own (the host's) network namespace.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("hi from the host\n"))
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		got, err := d.forwardOnce(t, pod, int32(port))
		if err != nil || got != "hi from the host\n" {
			t.Errorf("forward to the host's port %d: %v, read %q", port, err, got)
		}
	})
}

// forwardOnce opens a port-forward to port and reads until the pod side closes.
func (d *daemon) forwardOnce(t *testing.T, pod string, port int32) (string, error) {
	resp, err := d.rt.PortForward(ctx(t), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{port}})
	if err != nil {
		return "", err
	}
	conn, err := dialSPDY(resp.GetUrl(), "portforward.k8s.io")
	if err != nil {
		return "", err
	}
	defer conn.Close()
	h := http.Header{}
	h.Set("port", strconv.Itoa(int(port)))
	h.Set("requestID", "0")
	h.Set("streamType", "error")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return "", err
	}
	h.Set("streamType", "data")
	data, err := conn.CreateStream(h)
	if err != nil {
		return "", err
	}
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() { b, err := io.ReadAll(data); got <- result{b, err} }()
	select {
	case r := <-got:
		if len(r.b) == 0 {
			msg, _ := io.ReadAll(errStream)
			return "", fmt.Errorf("no data (%v): %s", r.err, msg)
		}
		return string(r.b), nil
	case <-time.After(10 * time.Second):
		return "", fmt.Errorf("no data within 10s")
	}
}
