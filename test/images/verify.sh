#!/usr/bin/env bash
# verify.sh — smoke-test the images in the local registry by running them
# with runc: what critest relies on (hard-linked applets, ipcs, pgrep, users,
# nginx, httpd, nonewprivs, pause). Leaves no container or file behind.
set -euo pipefail

REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cradle-images-verify.XXXXXX")
PREFIX=cradle-images-verify-$$
IDS=()
FAILED=0

cleanup() {
	local id
	for id in "${IDS[@]}"; do
		runc delete -f "$id" >/dev/null 2>&1 || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "verify.sh: $*" >&2; }

# unpack REF NAME: pull REF and apply its layers, in order, to a fresh bundle
# WORK/NAME. Plain tar is enough: the builder writes no whiteouts.
unpack() {
	local ref=$1 name=$2 bundle=$WORK/$2 manifest layer
	skopeo copy -q --src-tls-verify=false "docker://$REGISTRY_ADDR/$ref" "oci:$WORK/oci:$name"
	manifest=$(jq -r --arg n "$name" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$WORK/oci/index.json")
	mkdir -p "$bundle/rootfs"
	for layer in $(jq -r '.layers[].digest' "$WORK/oci/blobs/sha256/${manifest#sha256:}"); do
		tar -xzf "$WORK/oci/blobs/sha256/${layer#sha256:}" -C "$bundle/rootfs" --numeric-owner -p
	done
	(cd "$bundle" && runc spec)
	# As under a CRI runtime: writable root, the default capabilities of
	# containerd and CRI-O (nginx's workers need SETUID and SETGID).
	# shellcheck disable=SC2016 # $caps is jq's variable
	edit "$name" '.root.readonly = false | .process.capabilities |= with_entries(.value = $caps)' \
		--argjson caps '["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]'
}

# edit NAME JQ-FILTER [jq options]: change the bundle's config.json.
edit() {
	local cfg=$WORK/$1/config.json
	jq "${@:3}" "$2" "$cfg" >"$cfg.new"
	mv "$cfg.new" "$cfg"
}

# run NAME ARG...: run the bundle to completion with ARGs as its process,
# print its output. Each run gets its own container id.
run() {
	local name=$1 id args
	shift
	id=$PREFIX-${#IDS[@]}
	IDS+=("$id")
	# One JSON string per line: jq would parse "ls -l" as its own options.
	args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	# shellcheck disable=SC2016 # $a is jq's variable
	edit "$name" '.process.terminal = false | .process.args = $a' --argjson a "$args"
	# runc forwards SIGTERM to the container's PID 1, which may ignore it, so
	# time out with SIGKILL; delete -f then kills what is left.
	timeout -s KILL 60 runc run --bundle "$WORK/$name" "$id" </dev/null 2>&1 || true
	runc delete -f "$id" >/dev/null 2>&1 || true
}

# expect WHAT PATTERN OUTPUT: grep -E PATTERN in OUTPUT.
expect() {
	if grep -qE -- "$2" <<<"$3"; then
		log "ok: $1"
	else
		log "FAIL: $1: no /$2/ in:"
		printf '    %s\n' "$3" >&2
		FAILED=1
	fi
}

net_admin() {
	# Needed only to bring up lo in the container's own network namespace.
	edit "$1" '.process.capabilities |= with_entries(.value += ["CAP_NET_ADMIN"])'
}

unpack e2e-test-images/busybox:1.29-2 busybox
out=$(run busybox ls -l /bin/ls)
expect "busybox: /bin/ls is a hard link of busybox" '^-rwxr-xr-x +[0-9]{3} .*/bin/ls$' "$out"
# Not ending with pgrep: sh would exec it in place and no sh would be left.
out=$(run busybox sh -c 'echo hi; ipcs -m; pgrep -l sh; sleep 5 & pgrep sleep; kill $!')
expect "busybox: sh runs" '^hi$' "$out"
expect "busybox: ipcs -m" 'Shared Memory Segments' "$out"
expect "busybox: pgrep -l sh" '^1 sh$' "$out"
expect "busybox: pgrep sleep" '^[0-9]+$' "$out"
edit busybox '.linux.maskedPaths += ["/bin/ls"]'
out=$(run busybox sh -c ls)
expect "busybox: masked /bin/ls is not run from busybox" '^sh: ls: Permission denied$' "$out"
edit busybox '.linux.maskedPaths -= ["/bin/ls"] | .process.user = {uid: 33, gid: 33}'
out=$(run busybox id)
expect "busybox: www-data in /etc/passwd" '^uid=33\(www-data\) gid=33\(www-data\)' "$out"

unpack k8s-staging-cri-tools/test-image-predefined-group:latest group
edit group '.process.user = {uid: 1000, gid: 1000, additionalGids: [50000]}'
out=$(run group id)
expect "predefined-group: default-user in group-defined-in-image" 'uid=1000\(default-user\).*50000\(group-defined-in-image\)' "$out"

unpack e2e-test-images/nonewprivs:1.3 nnp
edit nnp '.process.user = {uid: 1000, gid: 1000} | .process.noNewPrivileges = false'
out=$(run nnp /usr/local/bin/nnp)
expect "nonewprivs: setuid honoured" '^Effective uid: 0$' "$out"
edit nnp '.process.noNewPrivileges = true'
out=$(run nnp /usr/local/bin/nnp)
expect "nonewprivs: setuid ignored under no_new_privs" '^Effective uid: 1000$' "$out"

# (timeout, not wget -T: Debian's busybox wget crashes on -T.)
unpack e2e-test-images/nginx:1.14-2 nginx
net_admin nginx
out=$(run nginx sh -c 'ip link set lo up; nginx -g "daemon off;" & sleep 1; timeout 5 wget -qO- http://127.0.0.1/; cat /var/run/nginx.pid; kill -QUIT $!; wait')
expect "nginx: serves :80" 'Welcome to nginx' "$out"
expect "nginx: logs the request to stdout" '"GET / HTTP/1.1" 200' "$out"

unpack k8s-staging-cri-tools/hostnet-nginx-amd64:latest hostnet
net_admin hostnet
out=$(run hostnet sh -c 'ip link set lo up; nginx -g "daemon off;" & sleep 1; timeout 5 wget -qO- http://127.0.0.1:12003/; kill -QUIT $!; wait')
expect "hostnet-nginx: serves :12003" 'Welcome to nginx' "$out"

unpack e2e-test-images/httpd:2.4.39-4 httpd
net_admin httpd
out=$(run httpd sh -c 'ip link set lo up; httpd-foreground & sleep 1; timeout 5 wget -qO- http://127.0.0.1/; kill $!; wait')
expect "httpd: logs a line with httpd" 'httpd' "$out"
expect "httpd: serves /" 'It works!' "$out"

# detached NAME ARG...: start the bundle in the background; prints its id.
detached() {
	local name=$1 id args
	shift
	id=$PREFIX-${#IDS[@]}
	IDS+=("$id")
	args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	# shellcheck disable=SC2016 # $a is jq's variable
	edit "$name" '.process.terminal = false | .process.args = $a' --argjson a "$args"
	runc run -d --bundle "$WORK/$name" "$id" </dev/null >/dev/null 2>&1
	sleep 0.5
	echo "$id"
}

# stops WHAT ID SIGNAL: the container must exit within 3 s of SIGNAL, the
# way a CRI runtime stops it (the image's StopSignal, else SIGTERM).
stops() {
	local status
	runc kill "$2" "$3"
	for _ in $(seq 30); do
		status=$(runc state "$2" | jq -r .status)
		[[ $status == stopped ]] && break
		sleep 0.1
	done
	expect "$1" '^stopped$' "$status"
	runc delete -f "$2" >/dev/null 2>&1 || true
}

id=$(detached nginx nginx -g 'daemon off;')
expect "nginx: runs as PID 1" '"status": "running"' "$(runc state "$id")"
stops "nginx: stops on SIGQUIT" "$id" QUIT
id=$(detached httpd httpd-foreground)
expect "httpd: runs as PID 1" '"status": "running"' "$(runc state "$id")"
stops "httpd: stops on SIGTERM" "$id" TERM

unpack pause:3.9 pause
edit pause '.process.user = {uid: 65535, gid: 65535}'
id=$(detached pause /pause)
expect "pause: keeps running" '"status": "running"' "$(runc state "$id")"
pid=$(runc state "$id" | jq -r .pid)
expect "pause: is catatonit -P" 'catatonit.-P' "$(tr '\0' ' ' <"/proc/$pid/cmdline")"
stops "pause: stops on SIGTERM" "$id" TERM

if [[ $FAILED != 0 ]]; then
	log "some checks failed"
	exit 1
fi
log "all checks passed"
