package stats

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SpecCgroupsPath reads linux.cgroupsPath from a bundle's config.json: the
// spec is what runc created the cgroup from, whatever the driver.
func SpecCgroupsPath(bundle string) (string, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("read runtime spec: %w", err)
	}
	var spec struct {
		Linux *struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", fmt.Errorf("decode runtime spec in %s: %w", bundle, err)
	}
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("runtime spec in %s has no cgroupsPath", bundle)
	}
	return spec.Linux.CgroupsPath, nil
}
