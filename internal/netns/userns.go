package netns

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"go.podman.io/storage/pkg/reexec"

	"golang.org/x/sys/unix"
)

// User is the kind of a pod's user namespace. With one, the pod's other
// namespaces are created inside it, so that root in the pod owns them.
const User Kind = "user"

// IDMap maps a range of IDs in the pod to IDs on the host.
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// holderArg0 names the helper child that creates user namespaces: Go
// cannot unshare CLONE_NEWUSER from a multi-threaded process, so a fresh
// child of the daemon's own binary is cloned straight into the new
// namespaces instead. The binary's main calls reexec.Init to run it.
const holderArg0 = "cradle-ns-holder"

func init() {
	reexec.Register(holderArg0, func() { os.Exit(runHolder()) })
}

// holderConfig is what the child applies inside its new namespaces.
type holderConfig struct {
	Hostname string            `json:"hostname,omitempty"`
	Net      bool              `json:"net,omitempty"`
	Sysctls  map[string]string `json:"sysctls,omitempty"`
	Kinds    []Kind            `json:"kinds"`
}

// runHolder configures the namespaces it was cloned into, reports "ok" on
// stdout, and waits for stdin to close while the parent pins them.
func runHolder() int {
	var cfg holderConfig
	if err := json.Unmarshal([]byte(os.Getenv("CRADLE_NS_HOLDER")), &cfg); err != nil {
		fmt.Printf("error: decode config: %v\n", err)
		return 1
	}
	if err := configureHolder(cfg); err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	fmt.Println("ok")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

func configureHolder(cfg holderConfig) error {
	has := map[Kind]bool{}
	for _, k := range cfg.Kinds {
		has[k] = true
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
		}
	}
	if cfg.Net {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	sysctls, err := validate(cfg.Sysctls, has)
	if err != nil {
		return err
	}
	for _, s := range sysctls {
		if err := s.write(); err != nil {
			return err
		}
	}
	return nil
}

func idMaps(m []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(m))
	for _, x := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)})
	}
	return out
}

// inHolder clones a child into a new user namespace plus the namespaces in
// flags, lets it configure them, and bind-mounts its namespaces onto the
// pins while it waits.
func inHolder(flags int, req Request, mounts []pinMount) error {
	kinds := append([]Kind{User}, req.Kinds...)
	cfgJSON, err := json.Marshal(holderConfig{
		Hostname: req.Hostname, Net: flags&unix.CLONE_NEWNET != 0, Sysctls: req.Sysctls, Kinds: kinds,
	})
	if err != nil {
		return err
	}
	cmd := reexec.Command(holderArg0)
	cmd.Env = []string{"CRADLE_NS_HOLDER=" + string(cfgJSON)}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 uintptr(flags) | unix.CLONE_NEWUSER,
		UidMappings:                idMaps(req.UIDs),
		GidMappings:                idMaps(req.GIDs),
		GidMappingsEnableSetgroups: true,
		Pdeathsig:                  syscall.SIGKILL,
		// Become the pod's root: host root is not mapped in the new
		// namespace, and an unmapped process holds no capabilities there.
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start user namespace holder: %w", err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("user namespace holder: %w", err)
	}
	if line = strings.TrimSpace(line); line != "ok" {
		return errors.New("user namespace holder: " + strings.TrimPrefix(line, "error: "))
	}
	for _, m := range mounts {
		src := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/" + string(m.kind)
		if err := unix.Mount(src, m.pin, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s namespace onto %s: %w", m.kind, m.pin, err)
		}
	}
	return nil
}

// ValidateIDMaps checks a pod's user namespace mappings: one range each,
// with the pod's root mapped.
func ValidateIDMaps(uids, gids []IDMap) error {
	for _, m := range []struct {
		name string
		maps []IDMap
	}{{"uids", uids}, {"gids", gids}} {
		if len(m.maps) != 1 {
			return fmt.Errorf("%s: exactly one mapping is supported, got %d", m.name, len(m.maps))
		}
		if m.maps[0].ContainerID != 0 {
			return fmt.Errorf("%s: container ID 0 must be mapped", m.name)
		}
		if m.maps[0].Size == 0 {
			return fmt.Errorf("%s: mapping length is 0", m.name)
		}
	}
	return nil
}
