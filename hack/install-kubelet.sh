#!/usr/bin/env bash
# Builds the kubelet of k8s.io/kubernetes $K8S_VERSION from the Go module
# proxy, in a throwaway module that replaces each staging module k8s.io/X
# with k8s.io/X v0.Y.Z (the kubernetes module's own replaces point into its
# source tree, which a dependency can't use). About 13 minutes on 2 cores;
# the binary is cached under ~/.cache/cradle, so reruns are instant and a
# fresh machine rebuilds it. Prints the binary's path.
#
#   hack/install-kubelet.sh          the kubelet
#   hack/install-kubelet.sh e2e      also e2e_node.test and ginkgo, next to it
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=v0.${K8S_VERSION#v1.}
CACHE=${CRADLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cradle}
dir=$CACHE/kubernetes-$K8S_VERSION
mod=$dir/module
log() { echo "install-kubelet.sh: $*" >&2; }

want=(kubelet)
[[ ${1:-} == e2e ]] && want+=(e2e_node.test ginkgo)
missing=0
for b in "${want[@]}"; do [[ -x $dir/$b ]] || missing=1; done
if ((missing == 0)); then
	echo "$dir/kubelet"
	exit 0
fi

mkdir -p "$mod"
if [[ ! -f $mod/go.sum ]]; then
	log "preparing the build module for k8s.io/kubernetes $K8S_VERSION"
	cd "$mod"
	rm -f go.mod
	go mod init cradle-kubernetes-build >&2
	gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
	[[ -f $gomod ]] || { log "no go.mod for k8s.io/kubernetes $K8S_VERSION"; exit 1; }
	# The staging modules, as kubernetes' go.mod names them.
	sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | while read -r m; do
		go mod edit -replace "$m=$m@$STAGING_VERSION"
	done
	go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
	cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/test/e2e_node"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
EOF
	go mod tidy -e >&2 || true
	go mod download >&2
fi
cd "$mod"
export GOFLAGS="-mod=mod -buildvcs=false"
for b in "${want[@]}"; do
	[[ -x $dir/$b ]] && continue
	t0=$(date +%s)
	log "building $b (on 2 cores, from nothing: kubelet about 13 min, e2e_node.test 5, ginkgo 2)"
	case $b in
	kubelet) go build -o "$dir/.kubelet.tmp" k8s.io/kubernetes/cmd/kubelet >&2 ;;
	e2e_node.test) go test -c -o "$dir/.e2e_node.test.tmp" k8s.io/kubernetes/test/e2e_node >&2 ;;
	ginkgo) go build -o "$dir/.ginkgo.tmp" github.com/onsi/ginkgo/v2/ginkgo >&2 ;;
	esac
	mv "$dir/.$b.tmp" "$dir/$b"
	log "built $b in $(($(date +%s) - t0)) s"
done
echo "$dir/kubelet"
