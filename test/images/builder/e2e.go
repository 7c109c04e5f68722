package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// The images Kubernetes' node e2e suite (test/e2e_node, [NodeConformance])
// names in test/utils/image/manifest.go and test/e2e_node/image_list.go,
// under their registry.k8s.io paths. They are built only when build.sh is
// given an agnhost binary and a static busybox (hack/install-node-e2e.sh).

// staticApplets asks a static busybox for its applet names.
func staticApplets(bin string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w: %s", bin, err, stderr.String())
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if n != "busybox" && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) < 300 {
		return nil, fmt.Errorf("%s --list gave only %d applets: not a defconfig build", bin, len(names))
	}
	return names, nil
}

// staticBusyboxLayer is upstream's busybox image: one static busybox built
// with "make defconfig" (it has nmeter, which the Containers Lifecycle specs
// run and Debian's busybox lacks), every applet a hard link in /bin.
func staticBusyboxLayer(bin string) (*layer, error) {
	l := newLayer("static busybox (defconfig)")
	skeleton(l)
	if err := l.copyFile(bin, "bin/busybox", 0o755); err != nil {
		return nil, err
	}
	applets, err := staticApplets(bin)
	if err != nil {
		return nil, err
	}
	for _, a := range applets {
		l.hardlink("bin/"+a, "bin/busybox")
	}
	return l, nil
}

// agnhostLayer is what upstream's agnhost Dockerfile adds to its base:
// /agnhost, the agnhost-2 link the entrypoint-tester specs exec, /uploads
// for netexec, porter's /localhost.crt and .key (the https hook specs serve
// with them; they lie next to the agnhost binary), bash and curl (specs
// exec them), and user-defined-in-image (1000) in group-defined-in-image
// (50000) for the SupplementalGroups specs.
func agnhostLayer(in inputs, base *layer) (*layer, error) {
	l := newLayer("agnhost", base)
	if err := l.copyFile(in.agnhost, "agnhost", 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		if err := l.copyFile(filepath.Join(filepath.Dir(in.agnhost), f), f, 0o644); err != nil {
			return nil, err
		}
	}
	if err := in.root.addELF(l, "usr/bin/curl", "usr/bin/curl", 0o755); err != nil {
		return nil, err
	}
	if err := in.root.addELF(l, "bin/bash", "bin/bash", 0o755); err != nil {
		return nil, err
	}
	l.symlink("agnhost-2", "agnhost")
	l.dir("uploads", 0o755)
	l.text("etc/passwd", passwd+"user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n")
	l.text("etc/group", group+"user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n")
	l.dirOwned("home/user-defined-in-image", 0o755, 1000, 1000)
	return l, nil
}

// tagLabel gives every tag its own config, hence its own image ID: when two
// tags share an image a runtime may report either name in container status,
// and the image-update lifecycle specs fail.
func tagLabel(c execConfig, tag string) execConfig {
	labels := map[string]string{"io.cradle-runtime.test-image": tag}
	for k, v := range c.Labels {
		labels[k] = v
	}
	c.Labels = labels
	return c
}

// e2eImages are the node e2e images; base is the dynamic busybox root of
// the critest images, ngx, nnp and pause their layers.
func e2eImages(in inputs, base, ngx, nnp, pause *layer) ([]*image, error) {
	bb, err := staticBusyboxLayer(in.busyboxStatic)
	if err != nil {
		return nil, err
	}
	agn, err := agnhostLayer(in, base)
	if err != nil {
		return nil, err
	}
	site := nginxSite(80, base, ngx)
	shell := execConfig{Env: []string{defaultPath}, Cmd: []string{"sh"}}
	agnCfg := execConfig{Env: []string{defaultPath}, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "8080/tcp": {}, "8081/tcp": {}, "9376/tcp": {}, "5000/tcp": {}}}
	nginxCfg := execConfig{Env: []string{defaultPath}, Cmd: []string{"nginx", "-g", "daemon off;"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"}
	pauseCfg := execConfig{User: "65535:65535", Entrypoint: []string{"/pause"}, WorkingDir: "/"}
	webCfg := agnCfg
	webCfg.Cmd = []string{"test-webserver"}

	type def struct {
		layers []*layer
		config execConfig
		tags   []string
	}
	defs := []def{
		{[]*layer{bb}, shell, []string{e2e + "busybox:1.37.0-2", e2e + "busybox:1.36.1-1"}},
		{[]*layer{base, agn}, agnCfg, []string{e2e + "agnhost:2.66.1", e2e + "agnhost:2.55"}},
		{[]*layer{base, ngx, site}, nginxCfg, []string{e2e + "nginx:1.27.0-2", e2e + "nginx:1.28.0-2"}},
		{[]*layer{nnp}, execConfig{Env: []string{defaultPath}, Cmd: []string{"/usr/local/bin/nnp"}}, []string{e2e + "nonewprivs:1.4"}},
		{[]*layer{base}, execConfig{User: "1234", Env: []string{defaultPath}, Cmd: []string{"sh"}}, []string{e2e + "nonroot:1.5"}},
		// glibc's resolver (hostname -f): Debian's dynamic busybox and glibc.
		{[]*layer{base}, shell, []string{e2e + "glibc-dns-testing:2.1.1"}},
		{[]*layer{base}, shell, []string{e2e + "ipc-utils:1.4"}},
		{[]*layer{base, agn, marker(agn, "kitten.jpg")}, webCfg, []string{e2e + "kitten:1.8"}},
		{[]*layer{base, agn, marker(agn, "nautilus.jpg")}, webCfg, []string{e2e + "nautilus:1.8"}},
		{[]*layer{pause}, pauseCfg, []string{"pause:3.10.2", "pause:3.10.1"}},
	}
	var imgs []*image
	for _, d := range defs {
		for _, tag := range d.tags {
			imgs = append(imgs, &image{ref: "node-" + strings.NewReplacer("/", "-", ":", "-").Replace(tag),
				layers: d.layers, config: tagLabel(d.config, tag), push: []string{tag}})
		}
	}
	return imgs, nil
}
