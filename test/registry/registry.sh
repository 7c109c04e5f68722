#!/usr/bin/env bash
# registry.sh start|stop|status — a private Docker registry for cradle's tests.
#
# Runs Debian's docker-registry with a config of its own under REGISTRY_DIR
# (default /var/lib/cradle-test/registry), listening on REGISTRY_ADDR
# (default 127.0.0.1:5000), filesystem storage, deletes enabled. It never
# reads or changes /etc/docker/registry or the Debian service, except that a
# Debian service instance squatting the port is stopped.
set -euo pipefail

REGISTRY_DIR=${REGISTRY_DIR:-/var/lib/cradle-test/registry}
REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}
REGISTRY_BIN=/usr/bin/docker-registry
PORT=${REGISTRY_ADDR##*:}
PIDFILE=$REGISTRY_DIR/registry.pid
CONFIG=$REGISTRY_DIR/config.yml
LOG=$REGISTRY_DIR/registry.log

log() { echo "registry: $*" >&2; }

# ours_pid prints the pid of our registry if it is running.
ours_pid() {
	local pid
	[[ -f $PIDFILE ]] || return 1
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# The pid must still be a docker-registry run with our config, not a reuse.
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONFIG" || return 1
	echo "$pid"
}

answers() {
	curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY_ADDR/v2/" 2>/dev/null
}

# listener_pids prints the pids of processes listening on our TCP port.
listener_pids() {
	ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# evict_debian_service stops the Debian docker-registry service, which apt
# starts on :5000 with /etc/docker/registry/config.yml. Anything else on the
# port is left alone and reported.
evict_debian_service() {
	local pid exe args
	for pid in $(listener_pids); do
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		if [[ $exe == "$REGISTRY_BIN" && $args == *"/etc/docker/registry/config.yml"* ]]; then
			log "stopping the Debian docker-registry service (pid $pid) that holds port $PORT"
			if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
				systemctl stop docker-registry || true
			fi
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		elif [[ -n $pid ]]; then
			log "port $PORT is held by pid $pid ($exe $args), not ours; refusing to touch it"
			return 1
		fi
	done
}

write_config() {
	mkdir -p "$REGISTRY_DIR/storage"
	# Rewritten on every start so a changed REGISTRY_ADDR or REGISTRY_DIR applies.
	cat >"$CONFIG" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
  fields:
    service: cradle-test-registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  # A fixed secret only silences the random-secret warning; one instance.
  secret: cradle-test-registry
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

start() {
	local pid
	if pid=$(ours_pid); then
		if answers; then
			log "already running (pid $pid) on $REGISTRY_ADDR"
			return 0
		fi
	fi
	[[ -x $REGISTRY_BIN ]] || {
		# Fresh machines (CI) may lack it; apt may also start the Debian
		# service, which evict_debian_service then stops.
		log "installing docker-registry"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry >/dev/null
	}
	evict_debian_service
	write_config
	# setsid: the registry must outlive the calling shell and its job control.
	setsid "$REGISTRY_BIN" serve "$CONFIG" >>"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"
	for _ in $(seq 100); do
		if answers; then
			log "running (pid $pid) on $REGISTRY_ADDR, data in $REGISTRY_DIR"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	log "did not come up; last log lines:"
	tail -n 20 "$LOG" >&2 || true
	kill "$pid" 2>/dev/null || true
	rm -f "$PIDFILE"
	return 1
}

stop() {
	local pid
	if ! pid=$(ours_pid); then
		rm -f "$PIDFILE"
		log "not running"
		return 0
	fi
	kill "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
	log "stopped (pid $pid)"
}

status() {
	local pid
	if pid=$(ours_pid) && answers; then
		echo "running (pid $pid) on $REGISTRY_ADDR, data in $REGISTRY_DIR"
		return 0
	fi
	echo "not running"
	return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
restart)
	stop
	start
	;;
*)
	echo "usage: $0 start|stop|status|restart" >&2
	exit 2
	;;
esac
