package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FindKernel picks the newest kernel in bootDir whose modules (in
// modulesDir) include 9p, which the pod's share needs: Debian's
// linux-image-amd64 has them, the cloud kernel does not.
func FindKernel(bootDir, modulesDir string) (kernel, release string, err error) {
	images, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	sort.Sort(sort.Reverse(sort.StringSlice(images)))
	for _, img := range images {
		rel := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		dep, err := os.ReadFile(filepath.Join(modulesDir, rel, "modules.dep"))
		if err != nil {
			continue
		}
		if strings.Contains(string(dep), "/9p.ko") {
			return img, rel, nil
		}
	}
	if len(images) == 0 {
		return "", "", errors.New("no kernel in " + bootDir)
	}
	return "", "", fmt.Errorf("no kernel in %s has 9p modules in %s", bootDir, modulesDir)
}
