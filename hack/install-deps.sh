#!/usr/bin/env bash
# Installs the runtime parts cradle drives, from Debian's packages, when
# they are missing. Safe to run repeatedly.
set -euo pipefail
pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] || pkgs+=("$2"); }
need runc runc
need conmon conmon
need /usr/lib/cni/bridge containernetworking-plugins
need iptables iptables
need nsenter util-linux
# bin/cradle-pod-init, the shared-PID pods' PID 1, is a small C program.
need cc gcc
[ -e /usr/include/stdio.h ] || pkgs+=(libc6-dev)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "Go is required to build cradle (https://go.dev/doc/install); on Debian: apt-get install golang-go" >&2
  exit 1
fi
