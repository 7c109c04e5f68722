#!/usr/bin/env bash
# Installs what the test suite needs beyond the runtime parts: a local
# registry and the tools the offline image builder uses.
set -euo pipefail
pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || pkgs+=("$2"); }
need docker-registry docker-registry
need skopeo skopeo
need curl curl
need htpasswd apache2-utils
need openssl openssl
need ip iproute2
need nsenter util-linux
need pgrep procps
need gcc gcc
# The node e2e images' static busybox: make, and Debian's .orig.tar.bz2.
need make make
need bzip2 bzip2
# The vm handler tests drive Debian's containerd-shim-runc-v2 (the daemon is never started).
need containerd-shim-runc-v2 containerd
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || pkgs+=(libc6-dev)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
# The microVM handler (cradle-shim-vm): qemu and a guest kernel.
"$(dirname "$0")/install-vm-deps.sh"
