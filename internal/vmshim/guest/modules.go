package guest

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// moduleDeps parses modules.dep: each module's path and its dependencies.
func moduleDeps(r io.Reader) (map[string][]string, error) {
	deps := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return deps, nil
}

// moduleName is a module's name from its path: virtio_pci from
// kernel/drivers/virtio/virtio_pci.ko(.xz); '-' and '_' are the same.
func moduleName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// loadOrder is the module paths to load for names, each after its
// dependencies, each once. A name that is built in (builtin) needs none.
func loadOrder(deps map[string][]string, builtin map[string]bool, names []string) ([]string, error) {
	byName := map[string]string{}
	for p := range deps {
		byName[moduleName(p)] = p
	}
	var order []string
	seen := map[string]bool{}
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		// modules.dep lists the deps as modprobe unloads them: load from the end.
		ds := deps[p]
		for i := len(ds) - 1; i >= 0; i-- {
			visit(ds[i])
		}
		order = append(order, p)
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		if builtin[n] {
			continue
		}
		p, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("kernel module %s: not in modules.dep", n)
		}
		visit(p)
	}
	return order, nil
}

// builtinModules parses modules.builtin into names.
func builtinModules(r io.Reader) map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			m[moduleName(l)] = true
		}
	}
	return m
}
