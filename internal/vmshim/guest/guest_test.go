package guest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadOrder(t *testing.T) {
	dep := `kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/net-failover.ko:
`
	deps, err := moduleDeps(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadOrder(deps, map[string]bool{"virtio_pci": true}, []string{"virtio_pci", "9pnet_virtio", "9p", "net_failover"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko", "kernel/net/9p/9pnet.ko",
		"kernel/net/9p/9pnet_virtio.ko", "kernel/fs/netfs/netfs.ko", "kernel/fs/fscache/fscache.ko",
		"kernel/fs/9p/9p.ko", "kernel/drivers/net/net-failover.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order\n got %v\nwant %v", got, want)
	}
	if _, err := loadOrder(deps, nil, []string{"nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("missing module: %v", err)
	}
}

// TestCpio checks the writer against GNU cpio's reader.
func TestCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio")
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("/etc")
	c.File("/etc/a", []byte("hello"), 0o644)
	c.File("/etc/odd", []byte("abc"), 0o600)
	c.Symlink("/etc/l", "a")
	c.CharDev("/dev/console", 5, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil && os.Getuid() == 0 {
		t.Fatalf("cpio: %v: %s", err, out)
	}
	for name, want := range map[string]string{"etc/a": "hello", "etc/odd": "abc"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "etc/l")); err != nil || l != "a" {
		t.Errorf("symlink: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "etc/odd")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", fi, err)
	}
	if os.Getuid() == 0 {
		if fi, err := os.Lstat(filepath.Join(dir, "dev/console")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("console: %v %v", fi, err)
		}
	}
}

// TestBuildCache builds an image from small stand-ins and checks that the
// same inputs reuse it and a changed input makes another.
func TestBuildCache(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd")
	}
	dir := t.TempDir()
	mods := filepath.Join(dir, "modules", "6.1.0-test")
	if err := os.MkdirAll(filepath.Join(mods, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(mods, "modules.dep"), "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n")
	write(filepath.Join(mods, "kernel", "a.ko"), "A")
	write(filepath.Join(mods, "kernel", "b.ko"), "B")
	agent := filepath.Join(dir, "agent")
	write(agent, "agent-1")
	cfg := Config{Agent: agent, Runtime: "/bin/true", KernelRelease: "6.1.0-test", ModulesDir: filepath.Join(dir, "modules"),
		Modules: []string{"a"}, CacheDir: filepath.Join(dir, "cache")}
	img1, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(cfg)
	if err != nil || again != img1 {
		t.Fatalf("rebuild: %s %v, want the cached %s", again, err, img1)
	}
	write(agent, "agent-2")
	img2, err := Build(cfg)
	if err != nil || img2 == img1 {
		t.Fatalf("changed agent: %s %v, want an image other than %s", img2, err, img1)
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		return
	}
	out, err := exec.Command("sh", "-c", "gzip -dc "+img2+" | cpio -t --quiet").Output()
	if err != nil {
		t.Fatal(err)
	}
	list := string(out)
	for _, want := range []string{"init\n", "usr/bin/oci-runtime\n", "lib/modules/6.1.0-test/kernel/a.ko\n", "lib/modules/cradle.order\n", "dev/console\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("image lacks %q:\n%s", want, list)
		}
	}
	orderOut, err := exec.Command("sh", "-c", "gzip -dc "+img2+" | cpio -i --quiet --to-stdout lib/modules/cradle.order").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/lib/modules/6.1.0-test/kernel/b.ko\n/lib/modules/6.1.0-test/kernel/a.ko\n"; string(orderOut) != want {
		t.Errorf("cradle.order %q, want %q", orderOut, want)
	}
}
