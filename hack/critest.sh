#!/usr/bin/env bash
# critest.sh — runs critest (cri-tools v1.37.0) against a cradle daemon of its
# own: own root, runroot, socket, CNI network and cgroup parent, images from
# the local test registry (test/registry, test/images). Skips only the specs
# listed in test/critest/skip.txt. Prints the suite's summary, the skipped
# specs with their reasons and a line "critest (H handler): N passed, N failed"; exits
# non-zero when a spec fails or the daemon leaked something.
#
#   CRADLE_BIN=...        cradle binary (default bin/cradle; make build)
#   CRITEST_FOCUS=REGEX   run only matching specs (debugging)
#   CRITEST_KEEP=1        keep the state dir and daemon log after the run
#   CRITEST_HANDLER=vm    the default handler is the vm type (runc under
#                         containerd-shim-runc-v2); test/critest/skip-vm.txt
#                         adds what the runc shim itself cannot serve
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CRI_TOOLS_VERSION=v1.37.0
CACHE=${CRADLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cradle}
TOOLS=$CACHE/cri-tools-$CRI_TOOLS_VERSION
CRADLE_BIN=${CRADLE_BIN:-$REPO/bin/cradle}
HANDLER=${CRITEST_HANDLER:-runc}
SKIP_FILES=("$REPO/test/critest/skip.txt")
if [[ $HANDLER == vm ]]; then
	SKIP_FILES+=("$REPO/test/critest/skip-vm.txt")
fi

# Everything of this run lives under these; fixed paths so that a run that
# was killed is cleaned up by the next one.
STATE=/var/lib/cradle-critest
RUNROOT=/run/cradle-critest
SOCK=$RUNROOT/cradle.sock
NRI_SOCK=$RUNROOT/nri.sock
NETWORK=cradle-critest
BRIDGE=crcritest0
SUBNET=10.244.250.0/24
CGROUP=/cradle-critest
LOG=$STATE/critest.log
DAEMON_LOG=$STATE/cradle.log

log() { echo "critest.sh: $*" >&2; }
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || { log "needs root"; exit 1; }
[[ -x $CRADLE_BIN ]] || { log "$CRADLE_BIN is missing; run make build"; exit 1; }

# build_tools builds critest and crictl from the Go module proxy once; the
# binaries are cached per version.
build_tools() {
	[[ -x $TOOLS/critest && -x $TOOLS/crictl ]] && return 0
	log "building critest and crictl $CRI_TOOLS_VERSION (about 2 minutes)"
	local dir tmp
	tmp=$(mktemp -d)
	# The module cache is read-only: build in a writable copy.
	dir=$(cd "$tmp" && go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" |
		sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || { log "go mod download gave no source dir"; rm -rf "$tmp"; return 1; }
	cp -r "$dir" "$tmp/src"
	chmod -R u+w "$tmp/src"
	mkdir -p "$TOOLS"
	(cd "$tmp/src" && go test -c -mod=mod -o "$tmp/critest" ./cmd/critest &&
		go build -mod=mod -o "$tmp/crictl" ./cmd/crictl)
	mv "$tmp/critest" "$tmp/crictl" "$TOOLS/"
	rm -rf "$tmp"
}

# skip_regex joins the patterns of the skip file into one alternation.
skip_regex() {
	cat "${SKIP_FILES[@]}" | sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e 's/ # .*$//' | paste -sd'|'
}

write_config() {
	RUNC=$("$REPO/hack/install-runc.sh")
	mkdir -p "$STATE/net.d" "$RUNROOT"
	cat >"$STATE/net.d/10-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NETWORK",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$STATE/ipam", "ranges": [[{"subnet": "$SUBNET"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
	# The sandbox image differs from registry.k8s.io/pause:3.9, which
	# critest pulls and removes under other names.
	cat >"$STATE/cradle.toml" <<EOF
listen = "unix://$SOCK"
root = "$STATE/root"
runroot = "$RUNROOT"
log_level = "debug"

[runtime]
cgroup_parent = "$CGROUP"
default_handler = "$HANDLER"

# runc 1.4.1 (hack/install-runc.sh): recursive read-only and idmapped
# mounts, which Debian's 1.1.5 lacks.
[runtime.handlers.runc]
type = "oci"
path = "$RUNC"

# CRITEST_HANDLER=vm: the same runc under Debian's containerd shim v2.
[runtime.handlers.vm]
type = "vm"
path = "/usr/bin/containerd-shim-runc-v2"
runtime_path = "$RUNC"

[network]
cni_conf_dir = "$STATE/net.d"
cni_plugin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]
network_name = "$NETWORK"

[image]
pause_image = "registry.k8s.io/pause:3.10"
registries_conf = "$REPO/test/images/registries.conf"
signature_policy = "$REPO/test/images/policy.json"

# critest connects its NRI plugins here (-nri-socket). Its synchronization
# specs hold a plugin's Synchronize for 2s, as long as NRI's default
# request timeout: give plugins more.
[nri]
enable = true
socket_path = "$NRI_SOCK"
plugin_path = "$STATE/nri/plugins"
plugin_config_path = "$STATE/nri/conf.d"
plugin_request_timeout = "10s"
EOF
}

list_netns() { find /var/run/netns -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort || true; }

# ours reports whether a netns pin belongs to a sandbox of this daemon: its
# name is cradle-<sandbox ID>, and the daemon logs every sandbox ID.
ours() {
	[[ $1 == cradle-* && -f $DAEMON_LOG ]] && grep -qF -- "${1#cradle-}" "$DAEMON_LOG"
}

start_daemon() {
	"$CRADLE_BIN" serve --config "$STATE/cradle.toml" --config-dir "$STATE/cradle.d" >>"$DAEMON_LOG" 2>&1 </dev/null &
	DAEMON_PID=$!
	for _ in $(seq 600); do
		[[ -S $SOCK ]] && "$TOOLS/crictl" --runtime-endpoint "unix://$SOCK" version >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "cradle did not start serving; last log lines:"
	tail -n 30 "$DAEMON_LOG" >&2 || true
	return 1
}

stop_daemon() {
	stop_pid cradle "${DAEMON_PID:-}"
	DAEMON_PID=
}

# release_pods removes what failed specs left behind, through the daemon.
release_pods() { remove_pods "$TOOLS/crictl" "$SOCK" critest; }

check_leaks() {
	local n pids
	for n in $(comm -13 <(echo "$NETNS_BEFORE") <(list_netns)); do
		ours "$n" && LEAKS+=("netns /var/run/netns/$n")
	done
	pids=$(pgrep -f "conmon.*$RUNROOT" | paste -sd' ' || true)
	[[ -n $pids ]] && LEAKS+=("conmon processes $pids")
	pids=$(pgrep -f "containerd-shim.*$RUNROOT" | paste -sd' ' || true)
	[[ -n $pids ]] && LEAKS+=("shim processes $pids")
	for n in "$STATE/ipam/$NETWORK"/*; do
		[[ $(basename "$n") =~ ^[0-9.]+$ ]] && LEAKS+=("IP allocation $(basename "$n")")
	done
	if [[ -n $(ip -o link show master "$BRIDGE" 2>/dev/null) ]]; then
		LEAKS+=("veths on $BRIDGE")
	fi
	for n in $(our_cgroups); do
		LEAKS+=("cgroup $n")
	done
	return 0
}

# our_cgroups lists the pod and container cgroups of this daemon, deepest
# first: under our cgroup parent, and under the systemd slice critest picks
# when the runtime does not report its cgroup driver (RuntimeConfig).
our_cgroups() {
	local d
	for d in /sys/fs/cgroup/*"$CGROUP"/ /sys/fs/cgroup/*/test.slice/; do
		[[ -d $d ]] || continue
		find "$d" -mindepth 1 -type d 2>/dev/null
	done | while read -r d; do
		[[ $d == *"$CGROUP"/* ]] && { echo "$d"; continue; }
		n=$(basename "$d")
		[[ $n == cradle-* ]] && grep -qF -- "${n#cradle-}" "$DAEMON_LOG" 2>/dev/null && echo "$d"
	done | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# cleanup forces the host clean, whatever the run left. With "keep" (at the
# end of a CRITEST_KEEP=1 run) the state dir and logs stay.
cleanup() {
	local n m
	stop_daemon
	for n in $(pgrep -f "conmon.*$RUNROOT" || true); do kill -9 "$n" 2>/dev/null || true; done
	for n in $(pgrep -f "containerd-shim.*$RUNROOT" || true); do kill -9 "$n" 2>/dev/null || true; done
	for n in $(list_netns); do
		ours "$n" || continue
		umount -l "/var/run/netns/$n" 2>/dev/null || true
		rm -f "/var/run/netns/$n"
	done
	awk -v a="$STATE" -v b="$RUNROOT" 'index($5, a) == 1 || index($5, b) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	ip link del "$BRIDGE" 2>/dev/null || true
	for m in $(our_cgroups) /sys/fs/cgroup/*"$CGROUP"; do
		rmdir "$m" 2>/dev/null || true
	done
	rm -rf "$RUNROOT"
	if [[ ${1:-} == keep ]]; then
		return 0
	fi
	rm -rf "$STATE"
}

# finish runs at exit: the logs stay in /tmp for a look after the run.
finish() {
	if [[ -f $LOG ]]; then cp "$LOG" /tmp/cradle-critest.log; fi
	if [[ -f $DAEMON_LOG ]]; then cp "$DAEMON_LOG" /tmp/cradle-critest-daemon.log; fi
	if [[ ${CRITEST_KEEP:-} == 1 ]]; then
		cleanup keep
	else
		cleanup
	fi
}

# runtime_skips lists the specs critest skipped at run time, with its reason.
runtime_skips() {
	awk '/^S \[SKIPPED\]/ { getline name; want = 1; next }
		want && /^[[:space:]]+\[SKIPPED\] / { sub(/^[[:space:]]+\[SKIPPED\] /, ""); print "  " name "  -- " $0; want = 0 }' "$LOG"
}

main() {
	exec 8>/run/cradle-critest.lock
	flock -n 8 || { log "another critest.sh is running"; exit 1; }
	build_tools
	test/registry/registry.sh start
	test/images/build.sh
	cleanup # whatever a killed run left
	trap finish EXIT
	mkdir -p "$STATE"
	write_config
	NETNS_BEFORE=$(list_netns)
	LEAKS=()
	start_daemon

	local skip focus=() rc=0
	skip=$(skip_regex)
	[[ -n ${CRITEST_FOCUS:-} ]] && focus=(-ginkgo.focus "$CRITEST_FOCUS")
	log "running critest; output kept in /tmp/cradle-critest.log, daemon log in /tmp/cradle-critest-daemon.log"
	"$TOOLS/critest" -runtime-endpoint "unix://$SOCK" -image-endpoint "unix://$SOCK" -nri-socket "$NRI_SOCK" \
		-ginkgo.skip "$skip" "${focus[@]}" -ginkgo.no-color -ginkgo.v -ginkgo.timeout 50m \
		>"$LOG" 2>&1 || rc=$?

	release_pods
	stop_daemon
	check_leaks

	local summary counts passed failed
	echo
	echo "Failed specs:"
	grep -E '^[[:space:]]+\[(FAIL|PANICKED|TIMEDOUT)\] ' "$LOG" | sort -u || echo "  none"
	echo
	echo "Skipped by critest itself (a feature the runtime does not advertise):"
	runtime_skips
	echo
	summary=$(grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$LOG" | tail -n1 || true)
	counts=$(grep -E '[0-9]+ Passed \| [0-9]+ Failed \| [0-9]+ Pending \| [0-9]+ Skipped' "$LOG" | tail -n1 || true)
	echo "$summary"
	echo "$counts"
	echo
	echo "Skipped on purpose (${SKIP_FILES[*]#"$REPO/"}):"
	cat "${SKIP_FILES[@]}" | sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e 's/^\(.*\) # \(.*\)$/  \1  -- \2/'
	if [[ ${#LEAKS[@]} -gt 0 ]]; then
		echo
		echo "Leaked by the daemon:"
		printf '  %s\n' "${LEAKS[@]}"
		rc=1
	fi
	passed=$(sed -n 's/.* \([0-9]*\) Passed |.*/\1/p' <<<"$counts")
	failed=$(sed -n 's/.* \([0-9]*\) Failed |.*/\1/p' <<<"$counts")
	if [[ -z $passed || -z $failed ]]; then
		log "critest printed no summary (exit $rc); tail of its output:"
		tail -n 40 "$LOG" >&2
		passed=0 failed=1 rc=1
	fi
	echo
	echo "critest ($HANDLER handler): $passed passed, $failed failed"
	[[ $failed == 0 && $rc == 0 ]] || exit 1
}

main "$@"
