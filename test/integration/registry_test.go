package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// mainRegistry holds the offline image set (test/registry, test/images).
const mainRegistry = "127.0.0.1:5000"

// testRegistry is a docker-registry of one test's own, on a free port, with
// its own storage, optionally behind htpasswd auth or TLS.
type testRegistry struct {
	addr       string
	dir        string
	user, pass string // non-empty: htpasswd auth
	cert       string // non-empty: TLS with this self-signed certificate (also the CA)
}

type registryOpts struct {
	auth bool
	tls  bool
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRegistry(t *testing.T, o registryOpts) *testRegistry {
	t.Helper()
	bin := "/usr/bin/docker-registry"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("docker-registry not installed (make test-deps): %v", err)
	}
	r := &testRegistry{dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s/storage
  delete:
    enabled: true
http:
  addr: %s
  secret: cradle-image-test
`, r.dir, r.addr)
	if o.tls {
		r.cert, cfg = filepath.Join(r.dir, "cert.pem"), cfg+fmt.Sprintf("  tls:\n    certificate: %s/cert.pem\n    key: %s/key.pem\n", r.dir, r.dir)
		out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
			"-keyout", filepath.Join(r.dir, "key.pem"), "-out", r.cert,
			"-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl: %v: %s", err, out)
		}
	}
	if o.auth {
		r.user, r.pass = "cradle", "s3cret-pass"
		out, err := exec.Command("htpasswd", "-Bbc", filepath.Join(r.dir, "htpasswd"), r.user, r.pass).CombinedOutput()
		if err != nil {
			t.Fatalf("htpasswd: %v: %s", err, out)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: cradle-test\n    path: %s/htpasswd\n", r.dir)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(r.dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", filepath.Join(r.dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	eventually(t, 20*time.Second, func() string {
		resp, err := client.Get(r.url("/v2/"))
		if err != nil {
			return "registry not answering: " + err.Error()
		}
		resp.Body.Close()
		return ""
	})
	return r
}

func (r *testRegistry) url(path string) string {
	scheme := "http"
	if r.cert != "" {
		scheme = "https"
	}
	return scheme + "://" + r.addr + path
}

// push copies an image of the main registry into this one, same path.
func (r *testRegistry) push(t *testing.T, path string) {
	t.Helper()
	args := []string{"copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"}
	if r.user != "" {
		args = append(args, "--dest-creds", r.user+":"+r.pass)
	}
	args = append(args, "docker://"+mainRegistry+"/"+path, "docker://"+r.addr+"/"+path)
	cmd := exec.Command("skopeo", args...)
	// skopeo must not pick up the host's registries.conf mirrors.
	cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+filepath.Join(repoRoot(), "test", "images", "registries.conf"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// manifestLayers returns the layer digests of path:tag in this registry.
func (r *testRegistry) manifestLayers(t *testing.T, path, tag string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.url("/v2/"+path+"/manifests/"+tag), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest of %s:%s: %v (%d layers)", path, tag, err, len(m.Layers))
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// corruptBlob overwrites a blob in the registry's storage with bytes of the
// same length, so the registry serves content that fails its digest.
func (r *testRegistry) corruptBlob(t *testing.T, digest string) {
	t.Helper()
	hex := strings.TrimPrefix(digest, "sha256:")
	p := filepath.Join(r.dir, "storage", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// slowProxy forwards to the main registry, holding each blob download for
// delay; with stall it never answers blob downloads.
type slowProxy struct {
	addr  string
	blobs sync.Map // path -> *atomic.Int64: downloads of each blob
}

func startSlowProxy(t *testing.T, delay time.Duration, stall bool) *slowProxy {
	t.Helper()
	p := &slowProxy{}
	target, _ := url.Parse("http://" + mainRegistry)
	rp := httputil.NewSingleHostReverseProxy(target)
	done := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			n, _ := p.blobs.LoadOrStore(r.URL.Path, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			if stall {
				select {
				case <-r.Context().Done():
				case <-done:
				}
				return
			}
			time.Sleep(delay)
		}
		rp.ServeHTTP(w, r)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { close(done); _ = srv.Close() })
	return p
}

// blobGets is the most times any one blob was downloaded.
func (p *slowProxy) blobGets() int64 {
	var most int64
	p.blobs.Range(func(_, v any) bool {
		most = max(most, v.(*atomic.Int64).Load())
		return true
	})
	return most
}

// registriesConf writes a registries.conf into its own directory: the test
// images' mirrors plus extra. Its certs.d goes beside it.
func registriesConf(t *testing.T, extra string) string {
	t.Helper()
	base, err := os.ReadFile(filepath.Join(repoRoot(), "test", "images", "registries.conf"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(p, []byte(string(base)+"\n"+extra+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// withRegistriesConf points the daemon at another registries.conf.
func withRegistriesConf(path string) option {
	return withImageKey("registries_conf", fmt.Sprintf("%q", path))
}

// withImageKey sets a key of the daemon's [image] table, replacing the
// harness's value if it wrote one.
func withImageKey(key, value string) option {
	return func(d *daemon) {
		b, err := os.ReadFile(d.cfgPath)
		if err != nil {
			d.t.Fatal(err)
		}
		var out []string
		table := ""
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "[") {
				table = strings.Trim(l, "[] ")
			}
			if table == "image" && strings.HasPrefix(strings.TrimSpace(l), key+" ") {
				continue
			}
			out = append(out, l)
			if l == "[image]" {
				out = append(out, key+" = "+value)
			}
		}
		if err := os.WriteFile(d.cfgPath, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
}
