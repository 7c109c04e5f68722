# shellcheck shell=bash
# Shell helpers shared by hack/critest.sh, hack/node-e2e.sh and hack/bench.sh. The caller
# defines log() and a LEAKS array.

# stop_pid NAME PID: SIGTERM, up to 30 s for a clean exit, then SIGKILL,
# which is recorded in LEAKS: a daemon must exit on SIGTERM.
stop_pid() {
	local name=$1 pid=$2
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not exit within 30s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		LEAKS+=("$name ignored SIGTERM")
	fi
	wait "$pid" 2>/dev/null || true
}

# remove_pods CRICTL SOCK WHO: removes every pod the runtime on SOCK still
# has (what failed specs or a killed kubelet left), through the runtime;
# WHO names who left them, for the log.
remove_pods() {
	local crictl=("$1" --runtime-endpoint "unix://$2" --timeout 60s)
	local pods=()
	[[ -S $2 ]] || return 0
	mapfile -t pods < <("${crictl[@]}" pods -q 2>/dev/null || true)
	[[ ${#pods[@]} -eq 0 || -z ${pods[0]} ]] && return 0
	log "removing ${#pods[@]} pod(s) left by $3"
	"${crictl[@]}" rmp -f "${pods[@]}" >/dev/null 2>&1 || log "crictl rmp failed"
}
