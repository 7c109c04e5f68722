package nri

import (
	"fmt"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	rtgen "github.com/opencontainers/runtime-tools/generate"
)

// Adjust applies a plugin's CreateContainer adjustment to spec in place.
func Adjust(spec *specs.Spec, adj *api.ContainerAdjustment) error {
	if adj == nil || spec == nil {
		return nil
	}
	g := rtgen.NewFromSpec(spec)
	if err := nrigen.SpecGenerator(&g).Adjust(adj); err != nil {
		return fmt.Errorf("apply NRI adjustment: %w", err)
	}
	return nil
}
