#!/usr/bin/env bash
# Checks `make install` and `make uninstall` in a temporary DESTDIR: the tree
# they lay down, that a second install keeps an edited config, and that
# uninstall removes all it placed but the edited file.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "test-install: FAIL: $*" >&2; find "$dest" >&2; exit 1; }

make -s install DESTDIR="$dest" >/dev/null
for f in usr/local/bin/cradle usr/local/lib/systemd/system/cradle.service etc/cradle/cradle.toml \
	etc/crictl.yaml etc/cni/net.d/10-cradle.conflist usr/local/share/cradle/install-manifest; do
	[[ -f $dest/$f ]] || fail "$f not installed"
done
[[ -d $dest/etc/cradle/cradle.d ]] || fail "etc/cradle/cradle.d not created"
[[ ! -x bin/cradle-pod-init || -x $dest/usr/local/bin/cradle-pod-init ]] || fail "usr/local/bin/cradle-pod-init not installed"
grep -qx 'ExecStart=/usr/local/bin/cradle serve' "$dest/usr/local/lib/systemd/system/cradle.service" ||
	fail "the unit does not start the installed binary"
# The installed config is the defaults, accepted as they are.
"$dest/usr/local/bin/cradle" config --config "$dest/etc/cradle/cradle.toml" --config-dir "$dest/etc/cradle/cradle.d" >"$dest/effective.toml"
"$dest/usr/local/bin/cradle" config --default | cmp -s - "$dest/effective.toml" || fail "installed cradle.toml is not the defaults"
rm "$dest/effective.toml"

# An edited config survives a reinstall and an uninstall; the rest goes.
echo 'log_level = "debug"' >>"$dest/etc/cradle/cradle.toml"
make -s install DESTDIR="$dest" >/dev/null
grep -q 'log_level = "debug"' "$dest/etc/cradle/cradle.toml" || fail "install overwrote an edited cradle.toml"
make -s uninstall DESTDIR="$dest" >/dev/null
left=$(cd "$dest" && find . -type f | sort)
[[ $left == "./etc/cradle/cradle.toml" ]] || fail "after uninstall, files left: $left"

# An existing network config means no default network.
rm -rf "${dest:?}"/*
mkdir -p "$dest/etc/cni/net.d"
echo '{"cniVersion":"1.0.0","name":"other","plugins":[]}' >"$dest/etc/cni/net.d/05-other.conflist"
make -s install DESTDIR="$dest" >/dev/null
[[ ! -e $dest/etc/cni/net.d/10-cradle.conflist ]] || fail "a default network was written beside an existing one"
make -s uninstall DESTDIR="$dest" >/dev/null
left=$(cd "$dest" && find . -type f | sort)
[[ $left == "./etc/cni/net.d/05-other.conflist" ]] || fail "after uninstall, files left: $left"
echo "test-install: ok"
