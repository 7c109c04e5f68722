package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultShmSize is the size of a pod's /dev/shm, as in docker and CRI-O.
const DefaultShmSize = 64 << 20

// Files are the per-pod files bind-mounted into every container.
type Files struct {
	Hostname, Hosts, Resolv, Shm string
}

// WriteFiles creates the pod's hostname, hosts and resolv.conf in dir and
// mounts a tmpfs for /dev/shm unless the pod uses the host's IPC.
func WriteFiles(dir, hostname string, dns *runtimeapi.DNSConfig, hostIPC bool) (f Files, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, fmt.Errorf("create pod dir: %w", err)
	}
	f.Hostname = filepath.Join(dir, "hostname")
	if err := os.WriteFile(f.Hostname, []byte(hostname+"\n"), 0o644); err != nil {
		return f, fmt.Errorf("write hostname: %w", err)
	}
	f.Hosts = filepath.Join(dir, "hosts")
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if err := os.WriteFile(f.Hosts, []byte(hosts), 0o644); err != nil {
		return f, fmt.Errorf("write hosts: %w", err)
	}
	f.Resolv = filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(f.Resolv, []byte(resolvConf(dns)), 0o644); err != nil {
		return f, fmt.Errorf("write resolv.conf: %w", err)
	}
	if hostIPC {
		f.Shm = "/dev/shm"
		return f, nil
	}
	shm := filepath.Join(dir, "shm")
	if err := os.MkdirAll(shm, 0o755); err != nil {
		return f, fmt.Errorf("create shm dir: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", DefaultShmSize)
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return f, fmt.Errorf("mount shm tmpfs: %w", err)
	}
	f.Shm = shm
	return f, nil
}

// resolvConf renders DNSConfig; without one, the host's file is copied as
// the kubelet would for dnsPolicy Default.
func resolvConf(dns *runtimeapi.DNSConfig) string {
	if dns == nil || (len(dns.GetServers()) == 0 && len(dns.GetSearches()) == 0 && len(dns.GetOptions()) == 0) {
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			return string(b)
		}
		return ""
	}
	var b strings.Builder
	for _, s := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return b.String()
}

// RemoveFiles unmounts the shm (MNT_DETACH) and removes the pod dir. It is
// idempotent: whatever is already gone is skipped.
func RemoveFiles(dir string) error {
	if dir == "" {
		return nil
	}
	if err := UnmountShm(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pod dir: %w", err)
	}
	return nil
}

// UnmountShm releases the shm at stop time, keeping the other files.
func UnmountShm(dir string) error {
	if dir == "" {
		return nil
	}
	shm := filepath.Join(dir, "shm")
	if err := unix.Unmount(shm, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", shm, err)
	}
	return nil
}
