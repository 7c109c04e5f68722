#!/usr/bin/env bash
# node-e2e.sh — runs Kubernetes' node conformance suite (test/e2e_node of
# k8s.io/kubernetes, [NodeConformance]) in services mode: etcd and the
# kube-apiserver in-process, the kubelet as a process, against a runtime of
# its own (own config, state, socket, CNI network and runtime cgroup) with
# images from the local test registry. Prints the suite's summary and a line
# "node-e2e (RUNTIME, SET): N passed, N failed, N skipped"; exits non-zero
# when a spec fails.
#
#   NODE_E2E_SET=subset     (default) CI's subset: the [NodeConformance]
#                           specs of pods, probes, container runtime,
#                           security context, volumes, logs and lifecycle
#                           hooks (SUBSET below), without [Slow], [Serial],
#                           [Flaky] and [Disruptive]
#   NODE_E2E_SET=parallel   every [NodeConformance] spec without [Slow],
#                           [Serial], [Flaky] and [Disruptive]
#   NODE_E2E_SET=full       every [NodeConformance] spec: the parallel ones
#                           ([Slow] too), then [Serial]/[Disruptive] ones on
#                           one proc
#   NODE_E2E_RUNTIME=containerd   the same against Debian's containerd 1.6
#                           (the anchor), on its own socket and state
#   NODE_E2E_FOCUS=REGEX    narrow the focus further (debugging)
#   NODE_E2E_PROCS=N        parallel ginkgo procs (default 8)
#   NODE_E2E_KEEP=1         keep the state dir (logs, reports) after the run
#   CRADLE_BIN=...          cradle binary (default bin/cradle; make build)
#
# Skips only what test/node-e2e/skip.txt lists, each with its host reason.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

RUNTIME=${NODE_E2E_RUNTIME:-cradle}
SET=${NODE_E2E_SET:-subset}
PROCS=${NODE_E2E_PROCS:-8}
CRADLE_BIN=${CRADLE_BIN:-$REPO/bin/cradle}
CACHE=${CRADLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cradle}
CRICTL=$CACHE/cri-tools-v1.37.0/crictl

# Fixed paths, so that a killed run is cleaned up by the next one.
BASE=/var/lib/cradle-node-e2e
STATE=$BASE/$RUNTIME
RUNROOT=/run/cradle-node-e2e/$RUNTIME
SOCK=$RUNROOT/runtime.sock
PIDFILE=$RUNROOT/runtime.pid
NETWORK=cradle-node-e2e
BRIDGE=crnode0
SUBNET=10.244.247.0/24
# The runtime's own cgroup, as the kubelet's --runtime-cgroups.
RT_CGROUP=/cradle-node-e2e-runtime
KUBELET_ROOT=/var/lib/kubelet # several specs hard-code it
OUT=$BASE/out-$RUNTIME-$SET   # logs and reports, kept after the run
LOG=$OUT/ginkgo.log
DAEMON_LOG=$OUT/$RUNTIME.log

log() { echo "node-e2e.sh: $*" >&2; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || { log "needs root"; exit 1; }
case $RUNTIME in cradle | containerd) ;; *) log "NODE_E2E_RUNTIME must be cradle or containerd"; exit 1 ;; esac
case $SET in subset | parallel | full) ;; *) log "NODE_E2E_SET must be subset, parallel or full"; exit 1 ;; esac

# CI's subset, by the specs' describe texts: pods, probes, container
# runtime (and its image pulls), security context, volumes, the kubelet's
# logs and /etc/hosts specs, lifecycle hooks.
SUBSET='\[sig-node\] Pods |Probing container|Container Runtime|Security Context|EmptyDir|ConfigMap|Secrets|Projected|Downward API volume|HostPath|Container Lifecycle Hook|\[sig-node\] Kubelet '
NOT_PARALLEL='\[Slow\]|\[Serial\]|\[Flaky\]|\[Disruptive\]'

# skip_regex joins the patterns of the skip file into one alternation.
skip_regex() {
	sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e 's/ # .*$//' "$REPO/test/node-e2e/skip.txt" | paste -sd'|'
}

# cgroup_mounts lists every cgroup hierarchy's mount point (v1 and v2).
cgroup_mounts() {
	awk '$(NF-2) == "cgroup" || $(NF-2) == "cgroup2" { print $5 }' /proc/self/mountinfo
}

# join_cgroup puts a pid into CGROUP in every hierarchy.
join_cgroup() {
	local m
	for m in $(cgroup_mounts); do
		mkdir -p "$m$RT_CGROUP"
		if [[ -f $m/cpuset.cpus ]]; then
			cat "$m/cpuset.cpus" >"$m$RT_CGROUP/cpuset.cpus"
			cat "$m/cpuset.mems" >"$m$RT_CGROUP/cpuset.mems"
		fi
		echo "$1" >"$m$RT_CGROUP/cgroup.procs"
	done
}

write_cni() {
	mkdir -p "$STATE/net.d"
	cat >"$STATE/net.d/10-node-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETWORK",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE/ipam", "ranges": [[{"subnet": "$SUBNET"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
}

# The suite's default kubelet configuration (test/e2e_node/services), with
# this host's needs: cgroup v1 and swap allowed, pods on our CNI subnet.
write_kubelet_config() {
	cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupRoot: /
cgroupDriver: cgroupfs
volumeStatsAggPeriod: 10s
serializeImagePulls: false
fileCheckFrequency: 10s
podCIDR: $SUBNET
evictionPressureTransitionPeriod: 30s
evictionHard:
  memory.available: 250Mi
  nodefs.available: 10%
  nodefs.inodesFree: 5%
evictionMinimumReclaim:
  nodefs.available: 5%
  nodefs.inodesFree: 5%
failSwapOn: false
failCgroupV1: false
EOF
}

write_cradle_config() {
	local runc=$1
	cat >"$STATE/cradle.toml" <<EOF
listen = "unix://$SOCK"
root = "$STATE/root"
runroot = "$RUNROOT/cradle"
log_level = "debug"

[runtime]
cgroup_driver = "cgroupfs"
default_handler = "runc"

[runtime.handlers.runc]
type = "oci"
path = "$runc"

# The suite's RuntimeClass specs expect this handler to exist.
[runtime.handlers.test-handler]
type = "oci"
path = "$runc"

[network]
cni_conf_dir = "$STATE/net.d"
cni_plugin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]
network_name = "$NETWORK"

[image]
pause_image = "registry.k8s.io/pause:3.10"
registries_conf = "$REPO/test/images/registries.conf"
signature_policy = "$REPO/test/images/policy.json"

[nri]
enable = false
EOF
}

write_containerd_config() {
	local runc=$1 h
	# registry.k8s.io and the others through the local registry, as cradle's
	# registries.conf maps them.
	for h in registry.k8s.io gcr.io k8s.gcr.io docker.io; do
		mkdir -p "$STATE/certs.d/$h"
		cat >"$STATE/certs.d/$h/hosts.toml" <<EOF
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
	done
	cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/root"
state = "$RUNROOT/state"
plugin_dir = ""
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # No hugetlb controller on this host.
  disable_hugetlb_controller = true
  # Root lacks CAP_SYS_RESOURCE here: runc can't lower oom_score_adj to
  # the -998 containerd gives sandboxes; clamp to containerd's own, as
  # cradle does.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
        BinaryName = "$runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/certs.d"
EOF
}

start_runtime() {
	local runc
	runc=$("$REPO/hack/install-runc.sh")
	mkdir -p "$STATE" "$RUNROOT" "$OUT"
	write_cni
	write_kubelet_config
	if [[ $RUNTIME == cradle ]]; then
		[[ -x $CRADLE_BIN ]] || { log "$CRADLE_BIN is missing; run make build"; exit 1; }
		write_cradle_config "$runc"
		# The subshell joins the runtime cgroup, then becomes the daemon.
		(join_cgroup "$BASHPID" && exec "$CRADLE_BIN" serve --config "$STATE/cradle.toml" --config-dir "$STATE/cradle.d") \
			>>"$DAEMON_LOG" 2>&1 </dev/null 8>&- &
	else
		command -v containerd >/dev/null || {
			log "installing Debian's containerd"
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containerd >/dev/null
		}
		write_containerd_config "$runc"
		(join_cgroup "$BASHPID" && exec containerd --config "$STATE/containerd.toml") \
			>>"$DAEMON_LOG" 2>&1 </dev/null 8>&- &
	fi
	DAEMON_PID=$!
	echo "$DAEMON_PID" >"$PIDFILE"
	for _ in $(seq 600); do
		[[ -S $SOCK ]] && "$CRICTL" --runtime-endpoint "unix://$SOCK" version >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "$RUNTIME did not start serving; last log lines:"
	tail -n 30 "$DAEMON_LOG" >&2 || true
	return 1
}

# release_pods removes every pod of our runtime (the suite's leftovers and
# the NotReady sandboxes a killed kubelet leaves), through the runtime.
release_pods() { remove_pods "$CRICTL" "$SOCK" "the suite"; }

# kubelet_leftovers unmounts what the suite's kubelet left under its root
# (and the root's own shared bind mount), removes its state, and the files
# the framework writes next to e2e_node.test.
kubelet_leftovers() {
	awk -v a="$KUBELET_ROOT" '$5 == a || index($5, a "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$KUBELET_ROOT"
	if [[ -n ${E2E:-} ]]; then
		rm -rf "$E2E/kubeconfig" "$E2E/known_tokens.csv" "$E2E/kubelet-config" "$E2E/kubelet.conf.d" "$E2E"/static-pods*
		# The empty report-dir tree the framework mirrors there.
		if [[ -d $E2E/var ]]; then find "$E2E/var" -depth -type d -empty -delete; fi
	fi
}

# our_cgroups lists the kubelet's pod cgroups and the runtime's, deepest first.
our_cgroups() {
	local m
	for m in $(cgroup_mounts); do
		for d in "$m/kubepods" "$m$RT_CGROUP"; do
			[[ -d $d ]] && find "$d" -type d
		done
	done | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

cleanup() {
	local m
	release_pods
	stop_pid "$RUNTIME" "${DAEMON_PID:-}"
	DAEMON_PID=
	for m in $(pgrep -f "conmon.*$RUNROOT" || true) $(pgrep -f "containerd-shim.*$SOCK" || true); do
		kill -9 "$m" 2>/dev/null || true
	done
	kubelet_leftovers
	awk -v a="$STATE" -v b="$RUNROOT" 'index($5, a) == 1 || index($5, b) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	ip link del "$BRIDGE" 2>/dev/null || true
	for m in $(our_cgroups); do rmdir "$m" 2>/dev/null || true; done
	rm -rf "$RUNROOT"
	[[ ${1:-} == keep ]] || rm -rf "$STATE"
}

finish() {
	if [[ ${NODE_E2E_KEEP:-} == 1 ]]; then cleanup keep; else cleanup; fi
}

# no_systemd_path prints a PATH without systemd-run and systemctl: with
# systemd-run on PATH the framework runs the kubelet as a systemd unit, and
# there is no systemd here. /usr/bin (and /bin, its link) become a directory
# of links to everything else in them.
no_systemd_path() {
	local shadow=$BASE/bin f
	if [[ ! -d $shadow ]]; then
		mkdir -p "$shadow.tmp"
		for f in /usr/bin/*; do
			case ${f##*/} in systemd-run | systemctl) continue ;; esac
			ln -sf "$f" "$shadow.tmp/"
		done
		mv "$shadow.tmp" "$shadow"
	fi
	echo "/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:$shadow"
}

# run_ginkgo FOCUS SKIP PROCS LABEL runs one ginkgo invocation into $OUT.
run_ginkgo() {
	local focus=$1 skip=$2 procs=$3 label=$4 name=$RUNTIME
	[[ $RUNTIME == containerd ]] && name=containerd
	local args=(
		--container-runtime-endpoint="unix://$SOCK" --image-service-endpoint="unix://$SOCK"
		--container-runtime-process-name="$name" --container-runtime-pid-file="$PIDFILE"
		--prepull-images=false --kubelet-config-file="$STATE/kubelet.yaml"
		--node-name="$(hostname)" --report-dir="$OUT/report-$label"
		--kubelet-flags="--cgroup-driver=cgroupfs --fail-swap-on=false --runtime-cgroups=$RT_CGROUP --system-cgroups="
	)
	log "ginkgo ($label, $procs procs); output in $OUT/ginkgo-$label.log"
	mkdir -p "$OUT/work-$label"
	(cd "$OUT/work-$label" && PATH=$(no_systemd_path) "$E2E/ginkgo" --procs="$procs" --timeout="${NODE_E2E_TIMEOUT:-80m}" \
		--no-color --label-filter=NodeConformance --focus="$focus" --skip="$skip" --junit-report="$OUT/junit-$label.xml" \
		"$E2E/e2e_node.test" -- "${args[@]}") >"$OUT/ginkgo-$label.log" 2>&1 || return 1
}

main() {
	exec 8>/run/cradle-node-e2e.lock
	flock -n 8 || { log "another node-e2e.sh is running"; exit 1; }
	E2E=$("$REPO/hack/install-node-e2e.sh")
	[[ -x $CRICTL ]] || {
		log "crictl is missing: building cri-tools with hack/critest.sh's builder"
		CRITEST_FOCUS=NONE "$REPO/hack/critest.sh" >/dev/null 2>&1 || true
	}
	"$REPO/test/registry/registry.sh" start
	AGNHOST=$E2E/agnhost "$REPO/test/images/build.sh"
	cleanup # whatever a killed run left
	rm -rf "$OUT"
	mkdir -p "$OUT"
	trap finish EXIT
	LEAKS=()
	start_runtime

	# The label filter picks [NodeConformance]; focus and skip match texts.
	local focus=${NODE_E2E_FOCUS:-.} skip rc=0 start
	skip=$(skip_regex)
	start=$(date +%s)
	case $SET in
	subset)
		[[ -z ${NODE_E2E_FOCUS:-} ]] && focus=$SUBSET
		run_ginkgo "$focus" "$NOT_PARALLEL|$skip" "$PROCS" parallel || rc=1
		;;
	parallel) run_ginkgo "$focus" "$NOT_PARALLEL|$skip" "$PROCS" parallel || rc=1 ;;
	full)
		run_ginkgo "$focus" "\[Serial\]|\[Disruptive\]|$skip" "$PROCS" parallel || rc=1
		run_ginkgo "\[Serial\]|\[Disruptive\]" "$skip" 1 serial || rc=1
		;;
	esac
	WALL=$(($(date +%s) - start))

	local f passed=0 failed=0 skipped=0 ran=0 p
	echo
	for f in "$OUT"/ginkgo-*.log; do
		echo "== ${f##*/}"
		grep -E '^\s*\[(FAIL|PANICKED|TIMEDOUT|INTERRUPTED)\] ' "$f" | sort -u || true
		grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$f" | tail -n1 || true
		p=$(grep -E '[0-9]+ Passed \| [0-9]+ Failed' "$f" | tail -n1 || true)
		echo "$p"
		passed=$((passed + $(sed -n 's/.* \([0-9]*\) Passed |.*/\1/p' <<<"$p" | head -1) + 0))
		failed=$((failed + $(sed -n 's/.* \([0-9]*\) Failed |.*/\1/p' <<<"$p" | head -1) + 0))
		skipped=$((skipped + $(sed -n 's/.* \([0-9]*\) Skipped.*/\1/p' <<<"$p" | head -1) + 0))
		ran=$((ran + $(sed -n 's/^Ran \([0-9]*\) of.*/\1/p' "$f" | tail -n1) + 0))
	done
	echo
	echo "node-e2e ($RUNTIME, $SET): ran $ran, $passed passed, $failed failed, $skipped skipped, wall ${WALL}s; logs in $OUT"
	[[ $failed == 0 && $rc == 0 ]] || exit 1
}

main "$@"
