package integration

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// image.pinned_images: matching images are pinned in ImageStatus and
// ListImages, others are not; an explicit RemoveImage still removes a
// pinned image, as in containerd and CRI-O (the kubelet's image GC skips
// pinned images itself).
func TestPinnedImages(t *testing.T) {
	d := newDaemon(t, withDropIn("pinned", `[image]
pinned_images = ["registry.k8s.io/e2e-test-images/*", "*test-image-tags:2"]
`))
	d.pull(t, busybox)
	d.pull(t, testImage1)
	d.pull(t, tagsImage+":2")
	d.pull(t, pauseImage)

	want := map[string]bool{busybox: true, testImage1: false, tagsImage + ":2": true, pauseImage: true}
	for ref, pinned := range want {
		if got := d.imageStatus(t, ref).GetPinned(); got != pinned {
			t.Errorf("ImageStatus %s: pinned %v, want %v", ref, got, pinned)
		}
	}
	list, err := d.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	seen := 0
	for _, img := range list.GetImages() {
		for _, tag := range img.GetRepoTags() {
			if pinned, ok := want[tag]; ok {
				seen++
				if img.GetPinned() != pinned {
					t.Errorf("ListImages %s: pinned %v, want %v", tag, img.GetPinned(), pinned)
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("ListImages showed %d of the %d images", seen, len(want))
	}

	// A reload puts a new set of patterns in force at once.
	d.dropin(t, "pinned.toml", "[image]\npinned_images = [\""+testImage1+"\"]\n")
	if log := d.reload(t); !strings.Contains(log, "key=image.pinned_images") {
		t.Fatalf("the reload did not apply image.pinned_images:\n%s", log)
	}
	for ref, pinned := range map[string]bool{busybox: false, testImage1: true, tagsImage + ":2": false, pauseImage: true} {
		if got := d.imageStatus(t, ref).GetPinned(); got != pinned {
			t.Errorf("after the reload, ImageStatus %s: pinned %v, want %v", ref, got, pinned)
		}
	}

	if _, err := d.img.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("RemoveImage of a pinned image: %v", err)
	}
	resp, err := d.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
	if err != nil || resp.GetImage() != nil {
		t.Errorf("after RemoveImage: %v, %v", resp.GetImage(), err)
	}
}
