#!/usr/bin/env bash
# build.sh — build cradle's offline test images from Debian packages and push
# them to the local test registry (test/registry/registry.sh start first).
#
#   test/images/build.sh            build, push what the registry lacks
#   NO_PUSH=1 test/images/build.sh  build only (OCI layout in $CACHE/oci)
#   REFRESH=1 test/images/build.sh  fetch the current .debs even if cached
#   AGNHOST=BIN test/images/build.sh also the Kubernetes node e2e images
#                                   (hack/install-node-e2e.sh builds agnhost
#                                   and puts porter's localhost.crt/.key by it;
#                                   a static busybox is built from Debian's
#                                   source package, once)
#   LARGE=1 test/images/build.sh    also the pull benchmark's ~300 MB image
#                                   (cradle/bench-large:1, $CACHE/oci-large)
#
# The builder is reproducible, so a rebuild from the same .debs gives the same
# digests; tags the registry already holds at the built digest are skipped.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CRADLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cradle}
DEBS=$CACHE/debs
SYSROOT=$CACHE/sysroot
BIN=$CACHE/bin
OUT=$CACHE/oci
OUT_LARGE=$CACHE/oci-large
REGISTRY_ADDR=${REGISTRY_ADDR:-127.0.0.1:5000}

# Debian packages the images are made of: the programs, then every package
# holding a library they need (the builder fails naming any library missing).
PACKAGES=(
	busybox libc6                     # busybox and glibc
	util-linux                        # ipcs
	procps libproc2-0 libsystemd0     # pgrep, and libproc2's needs:
	libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1
	catatonit                         # pause
	nginx nginx-common                # nginx, and its libraries:
	libcrypt1 libpcre2-8-0 libssl3 zlib1g
)

# With AGNHOST, the node e2e images also need bash and curl (the specs exec
# them in agnhost) and the libraries they need.
E2E_PACKAGES=(
	bash libtinfo6 curl libcurl4 libbrotli1 libcom-err2 libdb5.3 libffi8 libgcc-s1 libgmp10 libgnutls30
	libgssapi-krb5-2 libhogweed6 libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0
	libldap-2.5-0 libnettle8 libnghttp2-14 libp11-kit0 libpsl5 librtmp1 libsasl2-2
	libsasl2-modules-db libssh2-1 libtasn1-6 libunistring2
)
if [[ -n ${AGNHOST:-} ]]; then
	PACKAGES+=("${E2E_PACKAGES[@]}")
fi

log() { echo "build.sh: $*" >&2; }

# need installs Debian packages for missing commands (fresh CI machines).
need() {
	local cmd=$1 pkg=$2
	command -v "$cmd" >/dev/null && return 0
	log "installing $pkg for $cmd"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null
}

# cached_deb prints the cached .deb of a package, if there is exactly one.
cached_deb() {
	local f=()
	shopt -s nullglob
	f=("$DEBS/$1"_*.deb)
	shopt -u nullglob
	[[ ${#f[@]} -eq 1 ]] && echo "${f[0]}"
}

fetch_debs() {
	mkdir -p "$DEBS"
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		if [[ ${REFRESH:-} == 1 ]] || ! cached_deb "$p" >/dev/null; then
			missing+=("$p")
		fi
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	log "downloading ${missing[*]}"
	local tmp
	tmp=$(mktemp -d "$DEBS/.dl.XXXXXX")
	# Download aside, then replace the cached versions: one .deb per package.
	# The sandbox user is root because _apt cannot write into root's home.
	if ! (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" >/dev/null); then
		log "apt-get download failed; updating the package lists and retrying"
		apt-get -q update >/dev/null
		(cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" >/dev/null)
	fi
	for p in "${missing[@]}"; do
		rm -f "$DEBS/$p"_*.deb
	done
	mv "$tmp"/*.deb "$DEBS"/
	rmdir "$tmp"
}

# extract unpacks the .debs into one tree, again only when the set changed.
extract_debs() {
	local debs=() p stamp
	for p in "${PACKAGES[@]}"; do
		debs+=("$(cached_deb "$p")")
	done
	stamp=$(for p in "${debs[@]}"; do basename "$p"; done | sort | sha256sum | cut -d' ' -f1)
	if [[ -f $SYSROOT/.stamp && $(<"$SYSROOT/.stamp") == "$stamp" ]]; then
		return 0
	fi
	log "extracting ${#debs[@]} packages"
	rm -rf "$SYSROOT"
	mkdir -p "$SYSROOT"
	for p in "${debs[@]}"; do
		dpkg-deb -x "$p" "$SYSROOT"
	done
	echo "$stamp" >"$SYSROOT/.stamp"
}

# compile builds a static C program when its source or the compiler changed.
compile() {
	local src=$1 out=$2 stamp
	stamp=$( (cat "$src"; gcc --version) | sha256sum | cut -d' ' -f1)
	if [[ -x $out && -f $out.stamp && $(<"$out.stamp") == "$stamp" ]]; then
		return 0
	fi
	log "compiling $(basename "$src")"
	# -ffile-prefix-map and -s keep the binary free of build paths.
	gcc -static -O2 -s -Wall -ffile-prefix-map="$REPO"=. -o "$out" "$src"
	echo "$stamp" >"$out.stamp"
}

# busybox_static builds upstream-like busybox (make defconfig, static: it has
# nmeter, which Debian's busybox lacks) from Debian's busybox source package,
# fetched with apt-get source through a deb-src list of its own. Cached per
# source version. Prints the binary.
busybox_static() {
	local src=$CACHE/busybox-src apt=$CACHE/busybox-src/apt orig ver out
	mkdir -p "$apt/lists/partial"
	shopt -s nullglob
	orig=("$src"/busybox_*.orig.tar.bz2)
	shopt -u nullglob
	if [[ ${#orig[@]} -ne 1 ]]; then
		log "fetching Debian's busybox source package"
		echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$apt/sources.list"
		local opts=(-q -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
			-o "Dir::State::Lists=$apt/lists" -o APT::Sandbox::User=root)
		apt-get "${opts[@]}" update >/dev/null
		(cd "$src" && apt-get "${opts[@]}" source --download-only busybox >/dev/null)
		orig=("$src"/busybox_*.orig.tar.bz2)
	fi
	ver=$(basename "${orig[0]}" .orig.tar.bz2)
	ver=${ver#busybox_}
	out=$BIN/busybox-static-$ver
	if [[ ! -x $out ]]; then
		log "building static busybox $ver (make defconfig; about 3 minutes)"
		local tmp
		tmp=$(mktemp -d)
		tar -C "$tmp" -xjf "${orig[0]}"
		(cd "$tmp/busybox-$ver" && make defconfig >/dev/null &&
			sed -i 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' .config &&
			make -j"$(nproc)" busybox >/dev/null 2>&1)
		mv "$tmp/busybox-$ver/busybox" "$out.tmp"
		mv "$out.tmp" "$out"
		rm -rf "$tmp"
	fi
	echo "$out"
}

# remote_digest prints the digest the registry serves for PATH:TAG, if any.
remote_digest() {
	local ref=$1
	curl -fsS -I --max-time 10 \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$REGISTRY_ADDR/v2/${ref%:*}/manifests/${ref##*:}" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}

# push pushes the images of the layout $1 (default $OUT) listed in its
# images.list.
push() {
	local out=${1:-$OUT} name digest dests dest pushed=0 kept=0
	if ! curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY_ADDR/v2/"; then
		log "no registry answers at $REGISTRY_ADDR; run test/registry/registry.sh start"
		return 1
	fi
	while read -r name digest dests; do
		for dest in $dests; do
			if [[ $(remote_digest "$dest") == "$digest" ]]; then
				kept=$((kept + 1))
				continue
			fi
			log "pushing $dest ($digest)"
			skopeo copy -q --preserve-digests --dest-tls-verify=false \
				"oci:$out:$name" "docker://$REGISTRY_ADDR/$dest"
			[[ $(remote_digest "$dest") == "$digest" ]] || {
				log "$dest: registry does not serve $digest after the push"
				return 1
			}
			pushed=$((pushed + 1))
		done
	done <"$out/images.list"
	log "pushed $pushed tags, $kept already up to date at $REGISTRY_ADDR"
}

# build_large builds the pull benchmark's image into its own layout, only when
# the builder's source or Go changed: it is 300 MB of gzip work.
build_large() {
	local stamp
	stamp=$( (cat "$HERE"/builder/*.go; go version) | sha256sum | cut -d' ' -f1)
	if [[ -f $OUT_LARGE/images.list && -f $OUT_LARGE/.stamp && $(<"$OUT_LARGE/.stamp") == "$stamp" ]]; then
		return 0
	fi
	log "building the ~300 MB bench image into $OUT_LARGE"
	rm -f "$OUT_LARGE/.stamp"
	"$BIN/builder" -large -out "$OUT_LARGE" -list "$OUT_LARGE/images.list"
	echo "$stamp" >"$OUT_LARGE/.stamp"
}

main() {
	mkdir -p "$CACHE"
	# One build at a time per cache: they share the .debs, tree and layout.
	exec 9>"$CACHE/.lock"
	flock 9
	need curl curl
	need dpkg-deb dpkg
	need gcc gcc
	if [[ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]]; then # for gcc -static
		log "installing libc6-dev"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libc6-dev >/dev/null
	fi
	need go golang-go
	need skopeo skopeo

	fetch_debs
	extract_debs
	mkdir -p "$BIN"
	compile "$HERE/pause/pause.c" "$BIN/pause"
	compile "$HERE/nonewprivs/nonewprivs.c" "$BIN/nonewprivs"
	(cd "$REPO" && go build -o "$BIN/builder" ./test/images/builder)
	local e2e=()
	if [[ -n ${AGNHOST:-} ]]; then
		need make make
		need bzip2 bzip2
		e2e=(-agnhost "$AGNHOST" -busybox-static "$(busybox_static)")
	fi
	"$BIN/builder" -root "$SYSROOT" -pause "$BIN/pause" -nonewprivs "$BIN/nonewprivs" "${e2e[@]}" \
		-out "$OUT" -list "$OUT/images.list"
	[[ ${LARGE:-} != 1 ]] || build_large
	if [[ ${NO_PUSH:-} == 1 ]]; then
		log "built into $OUT (not pushed)"
		cat "$OUT/images.list"
		[[ ${LARGE:-} != 1 ]] || cat "$OUT_LARGE/images.list"
		return 0
	fi
	push
	[[ ${LARGE:-} != 1 ]] || push "$OUT_LARGE"
}

main "$@"
