#!/usr/bin/env bash
# Installs what cradle-shim-vm needs on the host: qemu, and a Debian guest
# kernel whose modules include 9p (linux-image-amd64; the cloud kernel has
# none). The guest's runc is the host's (runc), and busybox-static serves
# the in-package VM test. Nothing here starts a service.
set -euo pipefail
pkgs=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs+=(qemu-system-x86)
ls /lib/modules/*/kernel/fs/9p/9p.ko* >/dev/null 2>&1 || pkgs+=(linux-image-amd64)
[ -x /usr/sbin/runc ] || pkgs+=(runc)
[ -x /bin/busybox ] || pkgs+=(busybox-static)
command -v cpio >/dev/null 2>&1 || pkgs+=(cpio)
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
