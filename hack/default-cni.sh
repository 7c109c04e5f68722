#!/usr/bin/env bash
# Writes a default bridge network for `make run` when /etc/cni/net.d has no
# config, so pods get an address out of the box.
set -euo pipefail
dir=${CNI_CONF_DIR:-/etc/cni/net.d}
mkdir -p "$dir"
# Any one of the three kinds is a config (ls of all three fails if one is missing).
if [ -n "$(find "$dir" -maxdepth 1 \( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \) -print -quit)" ]; then
  exit 0
fi
cat >"$dir/10-cradle.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "cradle",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cradle0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "10.85.0.0/16" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
echo "wrote $dir/10-cradle.conflist (bridge cradle0, 10.85.0.0/16)"
