#!/usr/bin/env bash
# Builds a containerd 2.x runc shim (v2.4.2) from the Go module proxy, for
# the vm handler tests of the 2.x start protocol (BootstrapParams) and task
# API v3; Debian's containerd-shim-runc-v2 is 1.6. About a minute; cached
# under ~/.cache/cradle, so reruns are instant. Prints the binary's path.
set -euo pipefail
version=v2.4.2
dir=${CRADLE_CACHE:-$HOME/.cache/cradle}/containerd-shim-$version
bin=$dir/containerd-shim-runc-v2
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dir"
GOBIN=$dir CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$version" >&2
echo "$bin"
