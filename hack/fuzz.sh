#!/usr/bin/env bash
# Runs each Go fuzz target for FUZZTIME (default 30s). A failing input is
# written under the package's testdata/fuzz/ and fails the run; commit it
# there and it becomes a regular test case of `make unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
TAGS="containers_image_openpgp exclude_graphdriver_btrfs"
status=0
for pkg in $(go list -tags "$TAGS" ./internal/...); do
	dir=$(go list -tags "$TAGS" -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "fuzz: $pkg $target for $FUZZTIME"
		# Minimising a new input is capped so it can't eat the budget.
		go test -tags "$TAGS" -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg" 2>&1 | tail -20 || status=1
	done
done
exit "$status"
