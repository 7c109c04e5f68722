#!/usr/bin/env bash
# Builds what the Kubernetes node e2e suite needs, once per version, cached
# under ~/.cache/cradle/kubernetes-$K8S_VERSION (a fresh machine rebuilds
# them; reruns are instant): e2e_node.test of k8s.io/kubernetes
# test/e2e_node, the ginkgo CLI (parallel procs), the kubelet next to
# e2e_node.test (the framework looks for it there) and agnhost (static, for
# the test images). All come from hack/install-kubelet.sh's throwaway module.
# Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-v1.37.2}
CACHE=${CRADLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cradle}
dir=$CACHE/kubernetes-$K8S_VERSION
log() { echo "install-node-e2e.sh: $*" >&2; }

exec 7>"$CACHE/.node-e2e-build.lock"
flock 7
K8S_VERSION=$K8S_VERSION hack/install-kubelet.sh e2e >/dev/null
if [[ ! -x $dir/agnhost ]]; then
	log "building agnhost"
	# -mod=mod: a module prepared before agnhost was in its tools.go gains
	# agnhost's few extra requirements here.
	(cd "$dir/module" && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" \
		go build -o "$dir/.agnhost.tmp" k8s.io/kubernetes/test/images/agnhost >&2)
	mv "$dir/.agnhost.tmp" "$dir/agnhost"
fi
# The agnhost image carries porter's test certificate, as upstream's does.
if [[ ! -f $dir/localhost.key ]]; then
	src=$(cd "$dir/module" && go list -mod=mod -f '{{.Dir}}' k8s.io/kubernetes/test/images/agnhost/porter)
	cp "$src/localhost.crt" "$src/localhost.key" "$dir/"
fi
echo "$dir"
