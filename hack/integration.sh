#!/usr/bin/env bash
# Runs the integration suite against real runc, conmon, CNI plugins and a
# local registry filled by the project's own image builder.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "the integration suite needs root" >&2
  exit 1
fi
test/registry/registry.sh start
test/images/build.sh
export CRADLE_BIN=$PWD/bin/cradle
CRADLE_TEST_RUNC=$(hack/install-runc.sh)
export CRADLE_TEST_RUNC
# The vm handler tests run a containerd 2.x shim too, beside Debian's 1.6.
CRADLE_TEST_SHIM2=$(hack/install-shim2.sh)
export CRADLE_TEST_SHIM2
# The kubelet tests drive cradle with a real, standalone kubelet.
CRADLE_TEST_KUBELET=$(hack/install-kubelet.sh)
export CRADLE_TEST_KUBELET
log=${TMPDIR:-/tmp}/cradle-integration.log
status=0
go test -tags "containers_image_openpgp exclude_graphdriver_btrfs" -count=1 -timeout 40m -v ./test/integration/ >"$log" 2>&1 || status=$?
# The daemon's debug logs go to the full log; show the verdicts.
grep -E '^(=== RUN|--- |PASS|FAIL|ok |\s+\S+_test.go)' "$log" || true
[ "$status" = 0 ] || echo "integration suite failed; full output in $log"
exit "$status"
