package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Registry paths, as upstream, so a registries.conf mirror maps the original
// names (registry.k8s.io/..., gcr.io/...) onto the local registry.
const (
	e2e      = "e2e-test-images/"
	criTools = "k8s-staging-cri-tools/"
)

const passwd = `root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const group = `root:x:0:
www-data:x:33:
nobody:x:65534:
nogroup:x:65534:
`

// inputs are the build's raw materials, prepared by build.sh.
type inputs struct {
	root       sysroot // extracted .debs
	pause      string  // static pause binary (test/images/pause)
	nonewprivs string  // static nonewprivs binary (test/images/nonewprivs)
	// Optional: with both set, the node e2e images are built too (e2e.go).
	agnhost       string // agnhost binary (k8s.io/kubernetes/test/images/agnhost)
	busyboxStatic string // static busybox built with "make defconfig"
}

// busyboxApplets asks the packaged busybox for its applet names, running it
// with the packaged loader and libraries (not the host's).
func busyboxApplets(r sysroot) ([]string, error) {
	cmd := exec.Command(r.abs("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		"--library-path", r.abs("lib/x86_64-linux-gnu"), r.abs("bin/busybox"), "--list")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w: %s", err, stderr.String())
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if n != "busybox" && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) < 100 {
		return nil, fmt.Errorf("busybox --list gave only %d applets", len(names))
	}
	return names, nil
}

// skeleton lays out the directories, users and name service files every
// busybox root starts with, and the further directories given.
func skeleton(l *layer, dirs ...string) {
	for _, d := range append([]string{"dev", "etc", "home", "proc", "run", "sys", "usr/bin", "usr/sbin", "var/log", "var/www"}, dirs...) {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	l.dir("var/tmp", 0o1777)
	l.symlink("var/run", "../run")
	l.text("etc/passwd", passwd)
	l.text("etc/group", group)
	l.text("etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n")
}

// baseLayer is the busybox root file system every shell-capable image starts
// from: Debian's dynamic busybox with each applet a hard link in /bin (so
// masking /bin/ls masks only ls, and "sh -c ls" really execs /bin/ls), glibc,
// util-linux's ipcs and procps' pgrep/pkill.
func baseLayer(in inputs) (*layer, error) {
	l := newLayer("busybox, glibc, ipcs, pgrep")
	skeleton(l, "usr/local/bin")

	r := in.root
	if err := r.addELF(l, "bin/busybox", "bin/busybox", 0o755); err != nil {
		return nil, err
	}
	applets, err := busyboxApplets(r)
	if err != nil {
		return nil, err
	}
	for _, a := range applets {
		l.hardlink("bin/"+a, "bin/busybox")
	}
	// Debian's busybox lacks these applets; critest runs "ipcs -m" and "pgrep".
	if err := r.addELF(l, "usr/bin/ipcs", "bin/ipcs", 0o755); err != nil {
		return nil, err
	}
	if err := r.addELF(l, "usr/bin/pgrep", "bin/pgrep", 0o755); err != nil {
		return nil, err
	}
	l.hardlink("bin/pkill", "bin/pgrep") // procps picks its mode from argv[0]
	return l, nil
}

// marker adds one file named after the image, like upstream's image-test
// Dockerfile (ADD ${TEST} ${TEST}), so each image gets its own layer and ID.
func marker(base *layer, name string) *layer {
	l := newLayer("marker "+name, base)
	l.text(name, name+"\n")
	return l
}

func nginxLayer(in inputs, base *layer) (*layer, error) {
	l := newLayer("nginx", base)
	r := in.root
	if err := r.addELF(l, "usr/sbin/nginx", "usr/sbin/nginx", 0o755); err != nil {
		return nil, err
	}
	// Debian's nginx-common config files, except the Debian site layout and
	// nginx.conf, which are replaced below.
	skip := map[string]bool{"nginx.conf": true, "sites-available": true, "sites-enabled": true, "modules-available": true, "modules-enabled": true, "conf.d": true}
	if err := l.copyTree(r.abs("etc/nginx"), "etc/nginx", func(rel string) bool { return !skip[strings.SplitN(rel, "/", 2)[0]] }); err != nil {
		return nil, err
	}
	l.dir("etc/nginx/conf.d", 0o755)
	if err := l.copyFile(r.abs("usr/share/nginx/html/index.html"), "usr/share/nginx/html/index.html", 0o644); err != nil {
		return nil, err
	}
	// Runs in the foreground (Cmd adds "daemon off;"), logs to the container's
	// stdout/stderr, pid where critest looks for it (/var/run/nginx.pid).
	l.text("etc/nginx/nginx.conf", `user www-data;
worker_processes 1;
pid /var/run/nginx.pid;
error_log stderr notice;

events {
	worker_connections 1024;
}

http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log /dev/stdout;
	sendfile on;
	keepalive_timeout 65;
	include /etc/nginx/conf.d/*.conf;
}
`)
	// The compiled-in temp paths, made ahead so nginx needs no mkdir at start.
	l.dir("var/lib/nginx", 0o755)
	for _, d := range []string{"body", "fastcgi", "proxy", "scgi", "uwsgi"} {
		l.dirOwned("var/lib/nginx/"+d, 0o700, 33, 33) // www-data, as nginx makes them
	}
	l.dir("var/log/nginx", 0o755)
	l.symlink("var/log/nginx/access.log", "/dev/stdout")
	l.symlink("var/log/nginx/error.log", "/dev/stderr")
	return l, nil
}

func nginxSite(port int, base ...*layer) *layer {
	l := newLayer(fmt.Sprintf("nginx site on :%d", port), base...)
	l.text("etc/nginx/conf.d/default.conf", fmt.Sprintf(`server {
	listen %d;
	server_name localhost;

	location / {
		root /usr/share/nginx/html;
		index index.html index.htm;
	}
}
`, port))
	return l
}

func httpdLayer(base *layer) *layer {
	l := newLayer("busybox httpd", base)
	l.text("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n")
	// busybox httpd as PID 1 would ignore SIGTERM; the shell traps it instead.
	l.file("usr/local/bin/httpd-foreground", 0o755, []byte(`#!/bin/sh
# Serve /usr/local/apache2/htdocs on :80 in the foreground.
set -e
echo "httpd: serving /usr/local/apache2/htdocs on :80"
httpd -f -v -p 80 -h /usr/local/apache2/htdocs &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
`))
	return l
}

func pauseLayer(in inputs) (*layer, error) {
	l := newLayer("pause (catatonit -P)")
	if err := l.copyFile(in.pause, "pause", 0o755); err != nil {
		return nil, err
	}
	// catatonit is built static in Debian; addELF adds libraries should that
	// change.
	if err := in.root.addELF(l, "usr/bin/catatonit", "usr/bin/catatonit", 0o755); err != nil {
		return nil, err
	}
	return l, nil
}

func predefinedGroupLayer(base *layer) *layer {
	// What upstream's "adduser -u 1000 -D default-user; addgroup -g 50000
	// group-defined-in-image; addgroup default-user group-defined-in-image"
	// leaves behind.
	l := newLayer("default-user in group-defined-in-image", base)
	l.text("etc/passwd", passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n")
	l.text("etc/group", group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")
	l.dirOwned("home/default-user", 0o755, 1000, 1000)
	return l
}

// images defines the whole test image set.
func images(in inputs) ([]*image, error) {
	base, err := baseLayer(in)
	if err != nil {
		return nil, err
	}
	ngx, err := nginxLayer(in, base)
	if err != nil {
		return nil, err
	}
	pause, err := pauseLayer(in)
	if err != nil {
		return nil, err
	}
	nnp := newLayer("nonewprivs")
	if err := nnp.copyFile(in.nonewprivs, "usr/local/bin/nnp", 0o4755); err != nil { // setuid root
		return nil, err
	}

	shell := func(user string) execConfig {
		return execConfig{User: user, Env: []string{defaultPath}, Cmd: []string{"sh"}}
	}
	nginxCfg := func(port string) execConfig {
		return execConfig{
			Env:          []string{defaultPath},
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: map[string]struct{}{port + "/tcp": {}},
			StopSignal:   "SIGQUIT",
		}
	}
	pauseCfg := func(labels map[string]string) execConfig {
		// As upstream's pause image: non-root, only the entrypoint.
		return execConfig{User: "65535:65535", Entrypoint: []string{"/pause"}, WorkingDir: "/", Labels: labels}
	}

	imgs := []*image{
		{ref: "busybox", layers: []*layer{base}, config: shell(""),
			push: []string{e2e + "busybox:1.29-2", "library/busybox:latest"}},
		{ref: "nginx", layers: []*layer{base, ngx, nginxSite(80, base, ngx)}, config: nginxCfg("80"),
			push: []string{e2e + "nginx:1.14-2"}},
		{ref: "hostnet-nginx", layers: []*layer{base, ngx, nginxSite(12003, base, ngx)}, config: nginxCfg("12003"),
			push: []string{criTools + "hostnet-nginx-amd64:latest"}},
		{ref: "httpd", layers: []*layer{base, httpdLayer(base)},
			config: execConfig{Env: []string{defaultPath}, Cmd: []string{"httpd-foreground"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}},
			push:   []string{e2e + "httpd:2.4.39-4"}},
		{ref: "nonewprivs", layers: []*layer{nnp},
			config: execConfig{Env: []string{defaultPath}, Entrypoint: []string{"/usr/local/bin/nnp"}},
			push:   []string{e2e + "nonewprivs:1.3"}},
		{ref: "pause-3.9", layers: []*layer{pause}, config: pauseCfg(nil),
			push: []string{"pause:3.9"}},
		// cradle's own sandbox image: same binary, different config, so it is a
		// different image from pause:3.9 (critest counts pause:3.9's tags).
		{ref: "pause-cradle", layers: []*layer{pause},
			config: pauseCfg(map[string]string{"io.cradle-runtime.sandbox-image": "true"}),
			push:   []string{"pause:3.10", "cradle/pause:1"}},
		{ref: "test-image-predefined-group", layers: []*layer{base, predefinedGroupLayer(base)}, config: shell("1000"),
			push: []string{criTools + "test-image-predefined-group:latest"}},
		// Same layers as busybox; USER alone makes each a different image.
		{ref: "test-image-user-uid", layers: []*layer{base}, config: shell("1002"),
			push: []string{criTools + "test-image-user-uid:latest"}},
		{ref: "test-image-user-username", layers: []*layer{base}, config: shell("www-data"),
			push: []string{criTools + "test-image-user-username:latest"}},
		{ref: "test-image-user-uid-group", layers: []*layer{base}, config: shell("1003:1004"),
			push: []string{criTools + "test-image-user-uid-group:latest"}},
		{ref: "test-image-user-username-group", layers: []*layer{base}, config: shell("www-data:1004"),
			push: []string{criTools + "test-image-user-username-group:latest"}},
		// One image, three tags.
		{ref: "test-image-tags", layers: []*layer{base, marker(base, "same-image")}, config: shell(""),
			push: []string{criTools + "test-image-tags:1", criTools + "test-image-tags:2", criTools + "test-image-tags:3"}},
		// Two different images under one repository.
		{ref: "test-image-tag-test", layers: []*layer{base, marker(base, "test")}, config: shell(""),
			push: []string{criTools + "test-image-tag:test"}},
		{ref: "test-image-tag-all", layers: []*layer{base, marker(base, "all")}, config: shell(""),
			push: []string{criTools + "test-image-tag:all"}},
	}
	// Different images, one each. test-image-digest cannot match upstream's
	// digest, which critest pins; it is pushed for completeness only.
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test-image-digest"} {
		imgs = append(imgs, &image{ref: n, layers: []*layer{base, marker(base, n)}, config: shell(""),
			push: []string{criTools + n + ":latest"}})
	}
	if in.agnhost != "" {
		more, err := e2eImages(in, base, ngx, nnp, pause)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, more...)
	}
	return imgs, nil
}

// checkInputs fails early with a clear message when build.sh did not prepare
// something.
func checkInputs(in inputs) error {
	ps := []string{in.pause, in.nonewprivs, in.root.abs("bin/busybox")}
	if (in.agnhost == "") != (in.busyboxStatic == "") {
		return fmt.Errorf("-agnhost and -busybox-static go together")
	}
	if in.agnhost != "" {
		ps = append(ps, in.agnhost, in.busyboxStatic)
	}
	for _, p := range ps {
		if _, err := os.Stat(p); err != nil {
			return err
		}
	}
	return nil
}
