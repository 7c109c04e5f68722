package runtime

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// QueryFeatures asks an OCI runtime binary (`<binary> features`, the
// runtime-spec features document) what it supports; an old runtime
// without the command supports neither.
func QueryFeatures(ctx context.Context, binary string) Features {
	out, err := exec.CommandContext(ctx, binary, "features").Output()
	if err != nil {
		return Features{}
	}
	return parseFeatures(out)
}

func parseFeatures(doc []byte) Features {
	var f features.Features
	if json.Unmarshal(doc, &f) != nil {
		return Features{}
	}
	feat := Features{RecursiveReadOnly: slices.Contains(f.MountOptions, "rro")}
	if l := f.Linux; l != nil && l.MountExtensions != nil && l.MountExtensions.IDMap != nil {
		feat.IDMappedMounts = l.MountExtensions.IDMap.Enabled != nil && *l.MountExtensions.IDMap.Enabled
	}
	return feat
}
