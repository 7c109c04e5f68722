package integration

import (
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const nginxImage = "registry.k8s.io/e2e-test-images/nginx:1.14-2"

// kill -9 before, during and after a pull: after a restart the store is
// consistent (the image is either whole or absent), the pull works again,
// and removing the image leaves no layer behind.
func TestCrashDuringPullImage(t *testing.T) {
	cases := []struct {
		name      string
		failpoint string
		killAfter time.Duration
	}{
		{"before", "pull:before", 0},
		{"during-early", "", 30 * time.Millisecond},
		{"during-late", "", 150 * time.Millisecond},
		{"after", "pull:after", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d *daemon
			if c.failpoint != "" {
				d = newDaemon(t, withEnv("CRADLE_TEST_FAILPOINTS="+c.failpoint))
			} else {
				d = newDaemon(t)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := d.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: nginxImage}})
				errc <- err
			}()
			if c.failpoint != "" {
				d.waitCrash(60 * time.Second)
			} else {
				time.Sleep(c.killAfter)
				d.kill9()
			}
			<-errc
			d.env = nil
			d.start()
			st, err := d.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: nginxImage}})
			if err != nil {
				t.Fatalf("ImageStatus after the crash: %v", err)
			}
			if img := st.GetImage(); img != nil && (img.GetSize() == 0 || len(img.GetRepoTags()) == 0) {
				t.Errorf("a half-pulled image is visible: %v", img)
			}
			ref := d.pull(t, nginxImage)
			// The image works: a container runs from it.
			cfg := d.podConfig(t, "afterpull")
			pod := d.runPod(t, cfg)
			cc := containerConfig("n", "sh", "-c", "echo pulled-ok")
			cc.Image.Image = nginxImage
			d.startContainer(t, pod, cfg, cc)
			logOf(t, filepath.Join(cfg.LogDirectory, "n.log"), "pulled-ok")
			d.removePod(t, pod)
			if _, err := d.img.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
				t.Fatal(err)
			}
			layers, _ := filepath.Glob(filepath.Join(d.dir, "root", "storage", "overlay", "*", "diff"))
			if len(layers) != 0 {
				t.Errorf("%d layers left after removing the only image: %v", len(layers), layers)
			}
		})
	}
}
