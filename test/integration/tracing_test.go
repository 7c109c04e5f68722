package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withTracing points the daemon at an OTLP receiver, with more settings.
func withTracing(addr string, extra ...string) option {
	return withConfig(fmt.Sprintf("[tracing]\nendpoint = %q\ninsecure = true\n%s", addr, strings.Join(extra, "\n")))
}

// otlpReceiver is an in-process OTLP/gRPC trace collector.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services map[string]bool // service.name of the resources seen
}

func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				r.services[kv.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// startReceiver listens on 127.0.0.1:0 until the test ends, in plain
// gRPC unless given server options (TLS).
func startReceiver(t *testing.T, opts ...grpc.ServerOption) (*otlpReceiver, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{services: map[string]bool{}}
	srv := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return r, l.Addr().String()
}

func (r *otlpReceiver) snapshot() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// spanTree indexes received spans by ID and by name.
type spanTree struct {
	byID   map[string]*tracepb.Span
	byName map[string][]*tracepb.Span
}

func newSpanTree(spans []*tracepb.Span) spanTree {
	st := spanTree{byID: map[string]*tracepb.Span{}, byName: map[string][]*tracepb.Span{}}
	for _, s := range spans {
		st.byID[hex.EncodeToString(s.GetSpanId())] = s
		st.byName[s.GetName()] = append(st.byName[s.GetName()], s)
	}
	return st
}

// children are the names of the spans whose parent is p, sorted.
func (st spanTree) children(p *tracepb.Span) []string {
	var out []string
	for _, s := range st.byID {
		if string(s.GetParentSpanId()) == string(p.GetSpanId()) {
			out = append(out, s.GetName())
		}
	}
	sort.Strings(out)
	return out
}

// one is the only span named name, or fails the test.
func (st spanTree) one(t *testing.T, name string) *tracepb.Span {
	t.Helper()
	if n := len(st.byName[name]); n != 1 {
		names := make([]string, 0, len(st.byName))
		for k := range st.byName {
			names = append(names, k)
		}
		sort.Strings(names)
		t.Fatalf("%d spans named %q; got spans %q", n, name, names)
	}
	return st.byName[name][0]
}

// wantChildren fails unless p's children include each of want.
func (st spanTree) wantChildren(t *testing.T, p *tracepb.Span, want ...string) {
	t.Helper()
	have := st.children(p)
	for _, w := range want {
		if !contains(have, w) {
			t.Errorf("span %q has children %q, want %q among them", p.GetName(), have, w)
		}
	}
}

// Each CRI call is a server span continuing the caller's trace, with the
// steps of RunPodSandbox (pin, CNI ADD, the infra container's pull, runtime
// create and start), CreateContainer and StartContainer as its children;
// the spans still batched at shutdown are flushed before the daemon exits.
func TestTracingSpans(t *testing.T) {
	rcv, addr := startReceiver(t)
	// A handler with a pause container, whose create and start are spans.
	d := newDaemon(t, withTracing(addr, "service_name = \"cradle-test\""), withConfig(pausedHandler))
	d.pull(t, busybox)

	// The kubelet's trace, as its otelgrpc client would send it.
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cctx := metadata.AppendToOutgoingContext(ctx(t), "traceparent", "00-"+traceID+"-"+parentID+"-01")
	cfg := d.podConfig(t, "traced")
	// The infra container: a runtime create and start inside RunPodSandbox.
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	resp, err := d.rt.RunPodSandbox(cctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "paused"})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	pod := resp.GetPodSandboxId()
	cc := containerConfig("traced", "sleep", "1000")
	cc.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	cr, err := d.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cc, SandboxConfig: cfg})
	if err != nil {
		d.removePod(t, pod)
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := d.rt.StartContainer(ctx(t), &runtimeapi.StartContainerRequest{ContainerId: cr.GetContainerId()}); err != nil {
		t.Errorf("StartContainer: %v", err)
	}
	d.removePod(t, pod)
	// Straight after the last calls: their spans are still in the batch
	// (it exports every 5s), so only the flush at shutdown delivers them.
	d.stop()

	st := newSpanTree(rcv.snapshot())
	run := st.one(t, "runtime.v1.RuntimeService/RunPodSandbox")
	if got := hex.EncodeToString(run.GetTraceId()); got != traceID {
		t.Errorf("RunPodSandbox trace %s, want the caller's %s", got, traceID)
	}
	if got := hex.EncodeToString(run.GetParentSpanId()); got != parentID {
		t.Errorf("RunPodSandbox parent %s, want the caller's span %s", got, parentID)
	}
	if run.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("RunPodSandbox span kind %v", run.GetKind())
	}
	st.wantChildren(t, run, "pin namespaces", "CNI ADD", "start infra container")
	infra := st.one(t, "start infra container")
	st.wantChildren(t, infra, "image pull", "runtime create", "runtime start")
	for _, s := range st.byID {
		if s.GetEndTimeUnixNano() < s.GetStartTimeUnixNano() {
			t.Errorf("span %q ends before it starts", s.GetName())
		}
	}

	pull := st.one(t, "runtime.v1.ImageService/PullImage")
	st.wantChildren(t, pull, "image pull")
	create := st.one(t, "runtime.v1.RuntimeService/CreateContainer")
	st.wantChildren(t, create, "runtime create")
	start := st.one(t, "runtime.v1.RuntimeService/StartContainer")
	st.wantChildren(t, start, "runtime start")
	stop := st.one(t, "runtime.v1.RuntimeService/StopPodSandbox")
	st.wantChildren(t, stop, "CNI DEL")
	st.one(t, "runtime.v1.RuntimeService/RemovePodSandbox")
	// Spans not started by a caller's trace begin traces of their own.
	if string(create.GetTraceId()) == string(run.GetTraceId()) {
		t.Error("CreateContainer, sent without a trace, joined RunPodSandbox's")
	}
	rcv.mu.Lock()
	services := rcv.services
	rcv.mu.Unlock()
	if !services["cradle-test"] || len(services) != 1 {
		t.Errorf("service names %v, want only cradle-test", services)
	}
	for _, name := range []string{"CNI ADD", "runtime create", "runtime start", "pin namespaces"} {
		for _, s := range st.byName[name] {
			if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
				t.Errorf("span %q failed: %s", name, s.GetStatus().GetMessage())
			}
		}
	}
}

// With sampling_rate_per_million = 0 no trace of cradle's own is sampled,
// but a call whose caller sampled its trace is traced, and one whose
// caller did not is not.
func TestTracingSampling(t *testing.T) {
	rcv, addr := startReceiver(t)
	d := newDaemon(t, withTracing(addr, "sampling_rate_per_million = 0"))
	d.pull(t, busybox)

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	sampled := metadata.AppendToOutgoingContext(ctx(t), "traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	unsampled := metadata.AppendToOutgoingContext(ctx(t), "traceparent", "00-"+traceID+"-b7ad6b7169203332-00")
	cfg := d.podConfig(t, "sampled")
	resp, err := d.rt.RunPodSandbox(sampled, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	if _, err := d.rt.ListPodSandbox(unsampled, &runtimeapi.ListPodSandboxRequest{}); err != nil {
		t.Errorf("ListPodSandbox: %v", err)
	}
	d.removePod(t, resp.GetPodSandboxId())
	d.stop()

	st := newSpanTree(rcv.snapshot())
	run := st.one(t, "runtime.v1.RuntimeService/RunPodSandbox")
	st.wantChildren(t, run, "pin namespaces", "CNI ADD")
	for _, name := range []string{
		"runtime.v1.ImageService/PullImage", "image pull", "runtime.v1.RuntimeService/Version",
		"runtime.v1.RuntimeService/ListPodSandbox", "runtime.v1.RuntimeService/StopPodSandbox", "CNI DEL",
	} {
		if n := len(st.byName[name]); n != 0 {
			t.Errorf("%d unsampled %q spans exported", n, name)
		}
	}
	for _, s := range st.byID {
		if hex.EncodeToString(s.GetTraceId()) != traceID {
			t.Errorf("span %q of trace %x exported, only the caller's sampled trace was due", s.GetName(), s.GetTraceId())
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and returns its PEM file
// and the server credentials that present it.
func selfSigned(t *testing.T) (string, credentials.TransportCredentials) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "otlp-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "otlp.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return pemFile, credentials.NewServerTLSFromCert(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
}

// Without insecure the exporter speaks TLS, verified against the system's
// roots (here SSL_CERT_FILE, which Go reads for them).
func TestTracingTLS(t *testing.T) {
	pemFile, creds := selfSigned(t)
	rcv, addr := startReceiver(t, grpc.Creds(creds))
	d := newDaemon(t, withEnv("SSL_CERT_FILE="+pemFile),
		withConfig(fmt.Sprintf("[tracing]\nendpoint = %q\ninsecure = false", addr)))
	if _, err := d.rt.Status(ctx(t), &runtimeapi.StatusRequest{}); err != nil {
		t.Fatal(err)
	}
	d.stop()
	st := newSpanTree(rcv.snapshot())
	st.one(t, "runtime.v1.RuntimeService/Status")
}

// A collector that is not there costs spans, never a call or the shutdown.
func TestTracingCollectorDown(t *testing.T) {
	d := newDaemon(t, withTracing(fmt.Sprintf("127.0.0.1:%d", freePort(t))))
	d.pull(t, busybox)
	cfg := d.podConfig(t, "untraced")
	d.removePod(t, d.runPod(t, cfg))
	start := time.Now()
	d.stop() // the harness fails the test unless it exits 0 within 30s
	// The flush gives up after 5s; the rest is the daemon's own shutdown.
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("shutdown took %s with the collector down", took)
	}
}
