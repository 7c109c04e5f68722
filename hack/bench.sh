#!/usr/bin/env bash
# bench.sh — benchmarks cradle against containerd (Debian's package) in one
# run: both daemons started here with state dirs, sockets, CNI networks and
# registry settings of their own, the same workload driven through the CRI
# by bin/cradle-bench (internal/bench), the table printed, everything
# stopped and removed, and leaks checked. See docs/benchmarks.md.
#
#   BENCH_ITERATIONS=20   timed pod lifecycles per variant and runtime
#   BENCH_WARMUP=3        untimed ones before them
#   BENCH_PODS=20         pods running while memory is measured
#   BENCH_VARIANTS=pid-container,pid-pod
#   BENCH_LOADS=40x4,100x8  concurrent loads, PODSxCONCURRENCY ("" skips)
#   BENCH_FLOOR=1         also time the no-daemon floor (0 skips it)
#   BENCH_PULL=registry.k8s.io/cradle/bench-large:1  cold pulls of this
#                         ~300 MB image ("" skips them; LARGE=1 build.sh)
#   BENCH_PULL_REPS=3     cold pulls per runtime
#   BENCH_KUBELET=1       also start BENCH_KUBELET_PODS=20 static pods through
#                         the cached kubelet (hack/install-kubelet.sh) on each
#                         runtime and read its pod start histograms
#   BENCH_KEEP=1          keep the state dir and the daemon logs
#   BENCH_OUT=FILE        also write the report (text) here; the JSON goes
#                         next to it as FILE.json
#
# Neither daemon's system service is enabled or started: containerd is
# installed if missing (its service kept from starting), and run with
# `containerd --config` of our own.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

ITERATIONS=${BENCH_ITERATIONS:-20}
WARMUP=${BENCH_WARMUP:-3}
PODS=${BENCH_PODS:-20}
VARIANTS=${BENCH_VARIANTS:-pid-container,pid-pod}
LOADS=${BENCH_LOADS-40x4,100x8}
FLOOR=${BENCH_FLOOR:-1}
PULL=${BENCH_PULL-registry.k8s.io/cradle/bench-large:1}
PULL_REPS=${BENCH_PULL_REPS:-3}
KUBELET=${BENCH_KUBELET:-0}
KUBELET_PODS=${BENCH_KUBELET_PODS:-20}

# Fixed paths, so that a run that was killed is cleaned up by the next one.
STATE=/var/lib/cradle-bench
RUNROOT=/run/cradle-bench
CGROUP_ROOT=/cradle-bench
CR_DIR=$STATE/cradle
CR_RUN=$RUNROOT/cradle
CR_SOCK=$CR_RUN/cradle.sock
CR_NET=cradle-bench
CR_BRIDGE=crbench0
CR_SUBNET=10.244.240.0/24
CTR_DIR=$STATE/containerd
CTR_RUN=$RUNROOT/containerd
CTR_SOCK=$CTR_RUN/containerd.sock
CTR_NET=containerd-bench
CTR_BRIDGE=ctrbench0
CTR_SUBNET=10.244.241.0/24
FL_DIR=$STATE/floor
FL_NET=floor-bench
FL_BRIDGE=flbench0
FL_SUBNET=10.244.242.0/24
# test/images/build.sh's OCI layout: the floor's rootfs is its busybox.
IMAGE_LAYOUT=${CRADLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cradle}/oci
PAUSE_IMAGE=registry.k8s.io/pause:3.10
BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2
REGISTRY=127.0.0.1:5000
BENCH_BIN=$REPO/bin/cradle-bench
CRADLE_BIN=$REPO/bin/cradle

log() { echo "bench.sh: $*" >&2; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || { log "needs root"; exit 1; }

# install_containerd installs Debian's containerd without letting its
# postinst start or enable the system service.
install_containerd() {
	command -v containerd >/dev/null && command -v containerd-shim-runc-v2 >/dev/null && return 0
	log "installing containerd (Debian package; its service stays stopped and disabled)"
	local guard=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		guard=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	local rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends containerd; } >&2 || rc=$?
	[[ -n $guard ]] && rm -f /usr/sbin/policy-rc.d
	[[ $rc == 0 ]] || return "$rc"
	if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
		systemctl disable containerd.service >&2 || true
	else
		rm -f /etc/systemd/system/multi-user.target.wants/containerd.service
	fi
}

install_all() {
	hack/install-deps.sh >&2 # runc, conmon, containernetworking-plugins
	install_containerd
	test/registry/registry.sh start
	# The pull workload's image is built (and cached) only when it is used.
	if [[ -n $PULL ]]; then LARGE=1 test/images/build.sh; else test/images/build.sh; fi
	log "building bin/cradle and bin/cradle-bench"
	make -s build >&2
	go build -o "$BENCH_BIN" ./cmd/cradle-bench
}

list_netns() { find /var/run/netns -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort || true; }

conflist() { # name bridge subnet dir
	cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$1",
  "plugins": [
    {"type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$4/ipam", "ranges": [[{"subnet": "$3"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}
EOF
}

# restrict_oom: containerd gives the pause container oom_score_adj -998,
# which needs CAP_SYS_RESOURCE; where root lacks it (some VMs and
# containers), runc fails with "failed to update /proc/self/oom_score_adj:
# Permission denied". containerd's own switch for that case keeps the
# value at or above its own.
restrict_oom() {
	local bnd
	bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
	if (((16#$bnd >> 24) & 1)); then
		echo "    restrict_oom_score_adj = false"
	else
		log "no CAP_SYS_RESOURCE here: containerd runs with restrict_oom_score_adj = true"
		echo "    restrict_oom_score_adj = true"
	fi
}

write_configs() {
	mkdir -p "$CR_DIR/net.d" "$CTR_DIR/net.d" "$FL_DIR/net.d" "$CR_RUN" "$CTR_RUN"
	conflist "$FL_NET" "$FL_BRIDGE" "$FL_SUBNET" "$FL_DIR" >"$FL_DIR/net.d/10-floor.conflist"
	conflist "$CR_NET" "$CR_BRIDGE" "$CR_SUBNET" "$CR_DIR" >"$CR_DIR/net.d/10-bench.conflist"
	conflist "$CTR_NET" "$CTR_BRIDGE" "$CTR_SUBNET" "$CTR_DIR" >"$CTR_DIR/net.d/10-bench.conflist"
	# Both use Debian's runc (/usr/sbin/runc, cradle's default), overlay
	# storage and info-level logs.
	cat >"$CR_DIR/cradle.toml" <<EOF
listen = "unix://$CR_SOCK"
root = "$CR_DIR/root"
runroot = "$CR_RUN"
log_level = "info"

[runtime]
cgroup_parent = "$CGROUP_ROOT/cradle-default"

[network]
cni_conf_dir = "$CR_DIR/net.d"
cni_plugin_dirs = ["/usr/lib/cni"]
network_name = "$CR_NET"

[image]
pause_image = "$PAUSE_IMAGE"
registries_conf = "$REPO/test/images/registries.conf"
signature_policy = "$REPO/test/images/policy.json"
EOF
	# containerd 1.6 (config version 2): every path of its own; the CRI
	# plugin with its own CNI network, the sandbox image and registry.k8s.io
	# mirrored by the local registry.
	cat >"$CTR_DIR/config.toml" <<EOF
version = 2
root = "$CTR_DIR/root"
state = "$CTR_RUN/state"

[grpc]
  address = "$CTR_SOCK"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTR_DIR/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
$(restrict_oom)
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$CTR_DIR/net.d"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$CTR_RUN/runc"
          SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
      endpoint = ["http://$REGISTRY"]
EOF
}

# wait_socket waits for a daemon's socket; the bench tool then waits for
# the daemon to answer.
wait_socket() { # name pid sock log
	for _ in $(seq 600); do
		[[ -S $3 ]] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	log "$1 did not create $3; last log lines:"
	tail -n 30 "$4" >&2 || true
	return 1
}

start_daemons() {
	"$CRADLE_BIN" serve --config "$CR_DIR/cradle.toml" --config-dir "$CR_DIR/cradle.d" >>"$CR_DIR/cradle.log" 2>&1 </dev/null &
	CR_PID=$!
	containerd --config "$CTR_DIR/config.toml" >>"$CTR_DIR/containerd.log" 2>&1 </dev/null &
	CTR_PID=$!
	echo "$CR_PID" >"$STATE/cradle.pid"
	echo "$CTR_PID" >"$STATE/containerd.pid"
	wait_socket cradle "$CR_PID" "$CR_SOCK" "$CR_DIR/cradle.log"
	wait_socket containerd "$CTR_PID" "$CTR_SOCK" "$CTR_DIR/containerd.log"
}


stop_daemons() {
	stop_pid cradle "${CR_PID:-}"
	stop_pid containerd "${CTR_PID:-}"
	CR_PID='' CTR_PID=''
}

# our_pids lists the monitors a run of ours may leave: conmon of our cradle
# runroot, containerd shims of our containerd socket.
our_pids() {
	pgrep -f "conmon .*$CR_RUN/" || true
	pgrep -f "containerd-shim-runc-v2 .*-address $CTR_SOCK" || true
}

# our_netns lists netns pins a run of ours created: cradle-<sandbox ID>
# with the ID in our cradle's log, and cni-* (containerd's) that were not
# there when the run started.
our_netns() {
	local before=$STATE/netns.before n
	for n in $(list_netns); do
		if [[ $n == cradle-floor-* ]]; then
			echo "$n"
		elif [[ $n == cradle-* ]]; then
			grep -qF -- "${n#cradle-}" "$CR_DIR/cradle.log" 2>/dev/null && echo "$n"
		elif [[ $n == cni-* && -f $before ]]; then
			grep -qxF -- "$n" "$before" || echo "$n"
		fi
	done
}

check_leaks() {
	local n pids
	for n in $(our_netns); do LEAKS+=("netns /var/run/netns/$n"); done
	pids=$(our_pids | paste -sd' ')
	[[ -n $pids ]] && LEAKS+=("monitor processes $pids")
	for n in "$CR_DIR/ipam/$CR_NET"/* "$CTR_DIR/ipam/$CTR_NET"/* "$FL_DIR/ipam/$FL_NET"/*; do
		[[ -e $n && $(basename "$n") =~ ^[0-9.]+$ ]] && LEAKS+=("IP allocation $n")
	done
	for n in "$CR_BRIDGE" "$CTR_BRIDGE" "$FL_BRIDGE"; do
		[[ -n $(ip -o link show master "$n" 2>/dev/null) ]] && LEAKS+=("veths on $n")
	done
	for n in /sys/fs/cgroup/*"$CGROUP_ROOT"; do
		[[ -d $n ]] && [[ -n $(find "$n" -mindepth 1 -type d 2>/dev/null) ]] && LEAKS+=("cgroups below $n")
	done
	return 0
}

# cleanup forces the host clean, whatever a run (this one or a killed one)
# left; with "keep" the state dir and logs stay.
cleanup() {
	local n m
	stop_daemons
	for n in cradle containerd; do # daemons of a killed run
		m=$(cat "$STATE/$n.pid" 2>/dev/null || true)
		if [[ $m =~ ^[0-9]+$ && -r /proc/$m/cmdline ]] &&
			tr '\0' ' ' 2>/dev/null <"/proc/$m/cmdline" | grep -qF -- "$STATE/"; then
			stop_pid "$n (earlier run)" "$m"
		fi
	done
	for n in $(our_pids); do kill -9 "$n" 2>/dev/null || true; done
	for n in $(our_netns); do
		umount -l "/var/run/netns/$n" 2>/dev/null || true
		rm -f "/var/run/netns/$n"
	done
	awk -v a="$STATE" -v b="$RUNROOT" 'index($5, a) == 1 || index($5, b) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	ip link del "$CR_BRIDGE" 2>/dev/null || true
	ip link del "$CTR_BRIDGE" 2>/dev/null || true
	ip link del "$FL_BRIDGE" 2>/dev/null || true
	for m in /sys/fs/cgroup/*"$CGROUP_ROOT"; do
		[[ -d $m ]] || continue
		find "$m" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	# containerd 1.6 puts shim sockets in /run/containerd/s whatever its
	# state dir; remove the directory if this run created it.
	if [[ -f $STATE/run-containerd.created ]]; then
		rmdir /run/containerd/s /run/containerd 2>/dev/null || true
	fi
	rm -rf "$RUNROOT"
	[[ ${1:-} == keep ]] && return 0
	rm -rf "$STATE"
}

finish() {
	local rc=$?
	for n in cradle containerd; do
		[[ -f $STATE/$n/$n.log ]] && cp "$STATE/$n/$n.log" "/tmp/cradle-bench-$n.log"
	done
	if [[ ${BENCH_KEEP:-} == 1 ]]; then cleanup keep; else cleanup; fi
	exit "$rc"
}

main() {
	exec 8>/run/cradle-bench.lock
	flock -n 8 || { log "another bench.sh is running"; exit 1; }
	if pgrep -x cradle-bench >/dev/null; then
		log "a cradle-bench process is already running: $(pgrep -ax cradle-bench | head -n1)"
		exit 1
	fi
	if pgrep -x critest >/dev/null || pgrep -f 'integration\.test' >/dev/null; then
		log "warning: critest or the integration suite is running; the figures will be noisy"
	fi
	install_all
	cleanup # whatever a killed run left
	LEAKS=()
	trap finish EXIT
	mkdir -p "$STATE"
	list_netns >"$STATE/netns.before"
	[[ -e /run/containerd ]] || touch "$STATE/run-containerd.created"
	write_configs
	start_daemons
	log "cradle pid $CR_PID, containerd pid $CTR_PID; running cradle-bench"

	local out=${BENCH_OUT:-$STATE/report.txt} rc=0 floor=() kubelet=()
	if [[ $KUBELET == 1 ]]; then
		# Its own root dir (not /var/lib/kubelet) and cgroups below the run's.
		kubelet=(-kubelet "$(hack/install-kubelet.sh)" -kubelet-pods "$KUBELET_PODS"
			-kubelet-dir "$STATE/kubelet" -kubelet-cgroup-root "$CGROUP_ROOT/kubelet")
	fi
	if [[ $FLOOR == 1 ]]; then
		floor=(-floor-runc /usr/sbin/runc -floor-cni-conf "$FL_DIR/net.d/10-floor.conflist"
			-floor-cni-bin /usr/lib/cni -floor-image "$IMAGE_LAYOUT:busybox")
	fi
	mkdir -p "$(dirname "$out")"
	"$BENCH_BIN" \
		-runtime "cradle=unix://$CR_SOCK,pid=$CR_PID" \
		-runtime "containerd=unix://$CTR_SOCK,pid=$CTR_PID" \
		-iterations "$ITERATIONS" -warmup "$WARMUP" -pods "$PODS" -variants "$VARIANTS" \
		-image "$BUSYBOX" -pull "$BUSYBOX,$PAUSE_IMAGE" -cgroup-root "$CGROUP_ROOT" \
		-loads "$LOADS" "${floor[@]}" -pull-bench "$PULL" -pull-reps "$PULL_REPS" "${kubelet[@]}" \
		-work-dir "$STATE/work" -wait 60s -json "$out.json" | tee "$out" || rc=$?
	[[ -z ${BENCH_OUT:-} ]] || log "report in $out and $out.json"

	stop_daemons
	check_leaks
	if [[ ${#LEAKS[@]} -gt 0 ]]; then
		echo
		echo "Left behind by the run (removed now):"
		printf '  %s\n' "${LEAKS[@]}"
		rc=1
	else
		echo
		echo "bench.sh: clean: no pods, netns pins, monitor processes, IPs, veths or cgroups left"
	fi
	return "$rc"
}

main "$@"
