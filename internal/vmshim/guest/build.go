package guest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cradle-runtime/cradle/internal/agent/api"
)

// formatVersion changes when the layout below does, so that older cached
// images are not used.
const formatVersion = "cradle-initramfs-1"

// DefaultModules are what a pod VM needs: the virtio PCI transport, the
// NIC, the agent's serial port and the 9p share.
var DefaultModules = []string{"virtio_pci", "virtio_net", "virtio_console", "9pnet_virtio", "9p"}

// Config says what goes into the initramfs.
type Config struct {
	Agent         string   // static cradle-vm-agent; becomes /init
	Runtime       string   // the guest's OCI runtime (crun or runc); its libraries come along
	KernelRelease string   // modules from ModulesDir/KernelRelease
	ModulesDir    string   // default /lib/modules
	Modules       []string // default DefaultModules
	CacheDir      string   // images are CacheDir/<hash>.img
	// Extra files, guest path to host path (tests add a busybox).
	Extra map[string]string
}

// file is one file of the image: its guest path and host source.
type file struct {
	guest, host string
	perm        uint32
}

func (c *Config) defaults() {
	if c.ModulesDir == "" {
		c.ModulesDir = "/lib/modules"
	}
	if len(c.Modules) == 0 {
		c.Modules = DefaultModules
	}
}

// plan lists the image's files and its module load order.
func (c *Config) plan() ([]file, []string, error) {
	files := []file{{"/init", c.Agent, 0o755}, {api.GuestRuntime, c.Runtime, 0o755}}
	for g, h := range c.Extra {
		files = append(files, file{g, h, 0o755})
	}
	libs, err := sharedLibs(c.Runtime)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range libs {
		files = append(files, file{l, l, 0o755})
	}
	kdir := filepath.Join(c.ModulesDir, c.KernelRelease)
	depf, err := os.Open(filepath.Join(kdir, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("kernel %s modules: %w", c.KernelRelease, err)
	}
	defer depf.Close()
	deps, err := moduleDeps(depf)
	if err != nil {
		return nil, nil, err
	}
	builtin := map[string]bool{}
	if bf, err := os.Open(filepath.Join(kdir, "modules.builtin")); err == nil {
		builtin = builtinModules(bf)
		bf.Close()
	}
	mods, err := loadOrder(deps, builtin, c.Modules)
	if err != nil {
		return nil, nil, fmt.Errorf("kernel %s: %w", c.KernelRelease, err)
	}
	var order []string
	for _, m := range mods {
		g := path.Join("/lib/modules", c.KernelRelease, m)
		files = append(files, file{g, filepath.Join(kdir, m), 0o644})
		order = append(order, g)
	}
	return files, order, nil
}

// sharedLibs are the libraries bin loads, by ldd; none for a static one.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the dynamic loader
		}
	}
	return libs, nil
}

// Build returns the cached image for c, making it when it is missing.
func Build(c Config) (string, error) {
	c.defaults()
	if c.CacheDir == "" {
		return "", errors.New("guest image: no cache directory")
	}
	files, order, err := c.plan()
	if err != nil {
		return "", err
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].guest < files[j].guest })
	h := sha256.New()
	io.WriteString(h, formatVersion+"\n"+c.KernelRelease+"\n")
	for _, f := range files {
		fmt.Fprintf(h, "%s %o\n", f.guest, f.perm)
		if err := hashFile(h, f.host); err != nil {
			return "", err
		}
	}
	img := filepath.Join(c.CacheDir, hex.EncodeToString(h.Sum(nil))[:32]+".img")
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(c.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("guest image cache: %w", err)
	}
	tmp, err := os.CreateTemp(c.CacheDir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("guest image: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp, files, order); err != nil {
		tmp.Close()
		return "", fmt.Errorf("guest image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("guest image: %w", err)
	}
	// Concurrent builders write the same bytes: the last rename wins.
	if err := os.Rename(tmp.Name(), img); err != nil {
		return "", fmt.Errorf("guest image: %w", err)
	}
	return img, nil
}

func hashFile(h io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("guest image input: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("guest image input %s: %w", p, err)
	}
	return nil
}

func write(w io.Writer, files []file, order []string) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	c := &cpioWriter{w: gz}
	dirs := map[string]bool{}
	mkdirs := func(d string) {
		var parts []string
		for ; d != "/" && d != "." && !dirs[d]; d = path.Dir(d) {
			parts = append(parts, d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			dirs[parts[i]] = true
			c.Dir(parts[i])
		}
	}
	for _, d := range []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/etc", "/root"} {
		mkdirs(d)
	}
	// The kernel opens /dev/console for init's stdio before devtmpfs.
	c.CharDev("/dev/console", 5, 1)

	for _, f := range files {
		data, err := os.ReadFile(f.host)
		if err != nil {
			return err
		}
		mkdirs(path.Dir(f.guest))
		c.File(f.guest, data, f.perm)
	}
	var ob bytes.Buffer
	for _, o := range order {
		ob.WriteString(o + "\n")
	}
	mkdirs("/lib/modules")
	c.File("/lib/modules/cradle.order", ob.Bytes(), 0o644)
	c.File("/etc/hostname", []byte("cradle-vm\n"), 0o644)
	if err := c.Close(); err != nil {
		return err
	}
	return gz.Close()
}
