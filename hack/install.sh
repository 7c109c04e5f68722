#!/usr/bin/env bash
# hack/install.sh install|uninstall: what `make install` and `make uninstall`
# run. Installs the binary, the systemd unit and, only where none exists, a
# default /etc/cradle/cradle.toml (from `cradle config --default`), a
# crictl config and a CNI network. Everything goes below $DESTDIR.
#
# A manifest of what was placed, with checksums, lets uninstall remove
# exactly that: a config file edited since is kept, and said so.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:?usage: hack/install.sh install|uninstall}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSCONFDIR=${SYSCONFDIR:-/etc}
CNI_CONF_DIR=${CNI_CONF_DIR:-$SYSCONFDIR/cni/net.d}
CRADLE=${CRADLE:-bin/cradle}
manifest=$DESTDIR$PREFIX/share/cradle/install-manifest

say() { echo "install: $*"; }

# record PATH: the file (relative to DESTDIR) goes into the manifest with
# its checksum.
record() {
	mkdir -p "$(dirname "$manifest")"
	local sum
	sum=$(sha256sum "$DESTDIR$1" | cut -d' ' -f1)
	grep -v "  $1\$" "$manifest" 2>/dev/null >"$manifest.new" || true
	echo "$sum  $1" >>"$manifest.new"
	mv "$manifest.new" "$manifest"
}

# place SRC DEST MODE: always (re)installs a program file.
place() {
	install -D -m "$3" "$1" "$DESTDIR$2"
	record "$2"
	say "$2"
}

# config DEST MODE: writes stdin to DEST unless DEST exists; an operator's
# file is never overwritten.
config() {
	if [[ -e $DESTDIR$1 ]]; then
		say "$1 exists; left as it is"
		cat >/dev/null
		return
	fi
	mkdir -p "$(dirname "$DESTDIR$1")"
	cat >"$DESTDIR$1"
	chmod "$2" "$DESTDIR$1"
	record "$1"
	say "$1"
}

install_all() {
	[[ -x $CRADLE ]] || { echo "install: $CRADLE is not built (make build)" >&2; exit 1; }
	place "$CRADLE" "$BINDIR/cradle" 0755
	# The PID holder, where make build had a C compiler for it.
	[[ ! -x $(dirname "$CRADLE")/cradle-pod-init ]] || place "$(dirname "$CRADLE")/cradle-pod-init" "$BINDIR/cradle-pod-init" 0755
	local unit
	unit=$(mktemp)
	sed "s|@BINDIR@|$BINDIR|g" contrib/systemd/cradle.service >"$unit"
	place "$unit" "$UNITDIR/cradle.service" 0644
	rm -f "$unit"
	"$CRADLE" config --default | config "$SYSCONFDIR/cradle/cradle.toml" 0644
	mkdir -p "$DESTDIR$SYSCONFDIR/cradle/cradle.d"
	config "$SYSCONFDIR/crictl.yaml" 0644 <<'YAML'
runtime-endpoint: unix:///run/cradle/cradle.sock
image-endpoint: unix:///run/cradle/cradle.sock
timeout: 10
YAML
	# Any network config there, cradle's or another's, means no default.
	if [[ -d $DESTDIR$CNI_CONF_DIR && -n $(find "$DESTDIR$CNI_CONF_DIR" -maxdepth 1 \( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \) -print -quit) ]]; then
		say "$CNI_CONF_DIR has a network config; no default written"
	else
		CNI_CONF_DIR=$DESTDIR$CNI_CONF_DIR hack/default-cni.sh >/dev/null
		record "$CNI_CONF_DIR/10-cradle.conflist"
		say "$CNI_CONF_DIR/10-cradle.conflist"
	fi
}

uninstall_all() {
	if [[ ! -f $manifest ]]; then
		say "no manifest at $manifest: nothing installed there"
		return
	fi
	local sum path
	while read -r sum path; do
		[[ -e $DESTDIR$path ]] || continue
		case $path in
		"$BINDIR"/* | "$UNITDIR"/*) ;; # programs: always ours
		*)
			if [[ $(sha256sum "$DESTDIR$path" | cut -d' ' -f1) != "$sum" ]]; then
				say "$path was edited; kept"
				continue
			fi
			;;
		esac
		rm -f "$DESTDIR$path"
		say "removed $path"
	done <"$manifest"
	rm -f "$manifest"
	# Only cradle's own directories: bin/ or cni/net.d/ may be someone's.
	rmdir "$(dirname "$manifest")" "$DESTDIR$SYSCONFDIR/cradle/cradle.d" "$DESTDIR$SYSCONFDIR/cradle" 2>/dev/null || true
}

case $mode in
install) install_all ;;
uninstall) uninstall_all ;;
*) echo "usage: hack/install.sh install|uninstall" >&2; exit 2 ;;
esac
