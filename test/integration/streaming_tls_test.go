package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it,
// writes the server's certificate and key to dir, and returns the pool
// that trusts the CA.
func testCA(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cradle test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "cradle streaming"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return certFile, keyFile, roots
}

// streaming.tls_cert_file and tls_key_file: session URLs are https, a
// client trusting the test CA runs an exec, one that does not is refused.
func TestStreamingTLS(t *testing.T) {
	cert, key, roots := testCA(t, t.TempDir())
	d := newDaemon(t, withDropIn("tls", fmt.Sprintf("[streaming]\ntls_cert_file = %q\ntls_key_file = %q\n", cert, key)))
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "stream-tls")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("main", reaperInit...))

	exec := func() string {
		resp, err := d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"echo", "over-tls"}, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetUrl()
	}
	url := exec()
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("exec URL %q is not https", url)
	}
	s := openSessionTLS(t, &tls.Config{RootCAs: roots}, url, false, true, false, false)
	if code, msg := s.wait(t); code != 0 || s.out.String() != "over-tls\n" {
		t.Errorf("exec over TLS: code %d (%s), stdout %q", code, msg, s.out.String())
	}
	if conn, err := dialSPDYTLS(exec(), "v4.channel.k8s.io", &tls.Config{RootCAs: x509.NewCertPool()}); err == nil {
		conn.Close()
		t.Error("a client that does not trust the CA connected")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusting client: %v, want a certificate error", err)
	}
	if conn, err := dialSPDY(strings.Replace(exec(), "https://", "http://", 1), "v4.channel.k8s.io"); err == nil {
		conn.Close()
		t.Error("plain http was served")
	}
}

// streaming.idle_timeout: a session that carries nothing for longer is
// closed; one that keeps talking is not.
func TestStreamingIdleTimeout(t *testing.T) {
	d := newDaemon(t, withDropIn("idle", "[streaming]\nidle_timeout = \"2s\"\n"))
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "stream-idle")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("main", reaperInit...))

	// Talks every half second for 4s: twice the idle timeout in all.
	resp, err := d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.5; done"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	busy := openSession(t, resp.GetUrl(), false, true, false, false)
	if code, msg := busy.wait(t); code != 0 || !strings.HasSuffix(busy.out.String(), "8\n") {
		t.Errorf("busy session: code %d (%s), stdout %q", code, msg, busy.out.String())
	}

	// Silent: the server closes the connection after about 2s.
	resp, err = d.rt.Exec(ctx(t), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sleep", "1000"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	idle := openSession(t, resp.GetUrl(), false, true, false, false)
	select {
	case <-idle.conn.CloseChan():
	case <-time.After(30 * time.Second):
		t.Fatal("the idle session is still open after 30s")
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("the idle session was closed after %s, before the 2s timeout", took)
	}
	// What the closed session ran does not run on.
	d.assertNoExecLeftovers(t, ctr, "sleep 1000")
}
