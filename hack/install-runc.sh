#!/usr/bin/env bash
# Builds runc v1.4.1 from the Go module proxy: Debian's runc 1.1.5 lacks
# recursive read-only mounts and idmapped mounts. The binary is cached under
# ~/.cache/cradle, so reruns are instant; a fresh machine rebuilds it. Prints
# the binary's path.
set -euo pipefail
version=v1.4.1
dir=${CRADLE_CACHE:-$HOME/.cache/cradle}/runc-$version
bin=$dir/runc
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
if ! dpkg -s libseccomp-dev >/dev/null 2>&1 || ! command -v pkg-config >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends libseccomp-dev pkg-config >&2
fi
mkdir -p "$dir"
GOBIN=$dir GOFLAGS=-buildvcs=false go install -tags seccomp "github.com/opencontainers/runc@$version" >&2
echo "$bin"
