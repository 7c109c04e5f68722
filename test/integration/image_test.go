package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	testImage1 = "gcr.io/k8s-staging-cri-tools/test-image-1:latest" // busybox's layer plus one
	tagsImage  = "gcr.io/k8s-staging-cri-tools/test-image-tags"     // :1, :2, :3 are one image
)

func (d *daemon) imageStatus(t *testing.T, ref string) *runtimeapi.Image {
	t.Helper()
	resp, err := d.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("ImageStatus %s: %v", ref, err)
	}
	return resp.GetImage()
}

func (d *daemon) pullErr(t *testing.T, ref string, auth *runtimeapi.AuthConfig) error {
	_, err := d.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth})
	return err
}

func (d *daemon) removeImage(t *testing.T, ref string) error {
	_, err := d.img.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	return err
}

// wantImageCode fails unless err has the code and its message names every want.
func wantImageCode(t *testing.T, what string, err error, code codes.Code, want ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want code %s", what, err, code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: message %q does not name %q", what, err, w)
		}
	}
}

// storageLayers lists the layer IDs in the daemon's store.
func (d *daemon) storageLayers(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, drv := range []string{"overlay", "vfs"} {
		b, err := os.ReadFile(filepath.Join(d.dir, "root", "storage", drv+"-layers", "layers.json"))
		if err != nil {
			continue
		}
		var layers []struct{ ID string }
		if err := json.Unmarshal(b, &layers); err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

func TestImagePullByTagDigestAndShortName(t *testing.T) {
	d := newDaemon(t)
	id := d.pull(t, busybox)
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("image ref %q is not a config digest", id)
	}
	st := d.imageStatus(t, busybox)
	if st.GetId() != id || !slices.Contains(st.GetRepoTags(), busybox) || len(st.GetRepoDigests()) != 1 || st.GetSize() == 0 {
		t.Fatalf("status by tag: %+v", st)
	}
	digestRef := st.GetRepoDigests()[0]
	if !strings.HasPrefix(digestRef, "registry.k8s.io/e2e-test-images/busybox@sha256:") {
		t.Fatalf("repo digest %q", digestRef)
	}
	// By ID, ID prefix and digest: the very same status.
	for _, ref := range []string{id, strings.TrimPrefix(id, "sha256:"), id[:19], digestRef} {
		if got := d.imageStatus(t, ref); got.GetId() != id || !slices.Equal(got.GetRepoTags(), st.GetRepoTags()) ||
			!slices.Equal(got.GetRepoDigests(), st.GetRepoDigests()) {
			t.Errorf("status by %q = %+v, want %+v", ref, got, st)
		}
	}

	// By digest from scratch: no tag, the digest as the repo digest.
	if err := d.removeImage(t, busybox); err != nil {
		t.Fatal(err)
	}
	if got := d.pull(t, digestRef); got != id {
		t.Fatalf("pull by digest gave %s, want %s", got, id)
	}
	st = d.imageStatus(t, digestRef)
	if len(st.GetRepoTags()) != 0 || !slices.Equal(st.GetRepoDigests(), []string{digestRef}) {
		t.Fatalf("pulled by digest: tags %v digests %v", st.GetRepoTags(), st.GetRepoDigests())
	}

	// A short name resolves through unqualified-search-registries; the
	// same image under a second name is still one image.
	if got := d.pull(t, "busybox"); got != id {
		t.Fatalf("short name pulled %s, want %s", got, id)
	}
	st = d.imageStatus(t, "busybox")
	if st.GetId() != id || !slices.Contains(st.GetRepoTags(), "docker.io/library/busybox:latest") {
		t.Fatalf("short name status: %+v", st)
	}
	list, err := d.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "busybox"}}})
	if err != nil || len(list.GetImages()) != 1 || list.GetImages()[0].GetId() != id {
		t.Fatalf("ListImages filtered by short name: %v %v", list.GetImages(), err)
	}
	all, err := d.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(all.GetImages()) != 1 {
		t.Fatalf("ListImages: %d images, %v", len(all.GetImages()), err)
	}
}

func TestImageTagsRemoveAndRegistries(t *testing.T) {
	d := newDaemon(t)
	var ids []string
	for _, tag := range []string{"1", "2", "3"} {
		ids = append(ids, d.pull(t, tagsImage+":"+tag))
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("three tags of one image gave IDs %v", ids)
	}
	st := d.imageStatus(t, tagsImage+":2")
	want := []string{tagsImage + ":1", tagsImage + ":2", tagsImage + ":3"}
	if got := slices.Sorted(slices.Values(st.GetRepoTags())); !slices.Equal(got, want) {
		t.Fatalf("repo tags %v, want %v", got, want)
	}
	// Removing by one tag removes the image and every tag.
	if err := d.removeImage(t, tagsImage+":2"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range append(want, ids[0]) {
		if st := d.imageStatus(t, ref); st != nil {
			t.Errorf("%s still there after removal: %+v", ref, st)
		}
	}
	// Removing what is not there, by any kind of reference, succeeds.
	for _, ref := range []string{tagsImage + ":1", ids[0], "registry.k8s.io/never-pulled:1"} {
		if err := d.removeImage(t, ref); err != nil {
			t.Errorf("RemoveImage(%s) of an absent image: %v", ref, err)
		}
	}

	// One image from two registries is one image with both names.
	a, b := "registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"
	if ia, ib := d.pull(t, a), d.pull(t, b); ia != ib {
		t.Fatalf("same image from two registries: %s and %s", ia, ib)
	}
	if got := d.imageStatus(t, b).GetRepoTags(); len(got) != 2 || !slices.Contains(got, a) || !slices.Contains(got, b) {
		t.Fatalf("repo tags %v, want both names", got)
	}
	if err := d.removeImage(t, a); err != nil {
		t.Fatal(err)
	}
	if st := d.imageStatus(t, b); st != nil {
		t.Fatalf("%s survived removing %s: %+v", b, a, st)
	}
}

func TestImageStatusUserPinnedAndVerbose(t *testing.T) {
	d := newDaemon(t)
	for _, tc := range []struct {
		image    string
		uid      int64
		username string
	}{
		{"gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest", 1002, ""},
		{"gcr.io/k8s-staging-cri-tools/test-image-user-username:latest", 0, "www-data"},
		{"gcr.io/k8s-staging-cri-tools/test-image-user-uid-group:latest", 1003, ""},
		{"gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest", 0, "www-data"},
	} {
		d.pull(t, tc.image)
		st := d.imageStatus(t, tc.image)
		if st.GetUid().GetValue() != tc.uid || st.GetUsername() != tc.username || (tc.username != "" && st.GetUid() != nil) {
			t.Errorf("%s: uid %v username %q, want %d %q", tc.image, st.GetUid(), st.GetUsername(), tc.uid, tc.username)
		}
	}
	d.pull(t, pauseImage)
	if !d.imageStatus(t, pauseImage).GetPinned() {
		t.Error("the sandbox image is not pinned")
	}
	d.pull(t, busybox)
	if d.imageStatus(t, busybox).GetPinned() {
		t.Error("busybox is pinned")
	}
	resp, err := d.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busybox}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ImageSpec struct {
			OS     string `json:"os"`
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.ImageSpec.OS != "linux" || len(info.ImageSpec.RootFS.DiffIDs) == 0 {
		t.Fatalf("verbose info %q: %v", resp.GetInfo()["info"], err)
	}
}

func TestImageSharedLayersAndFsInfo(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	d.pull(t, testImage1)
	// test-image-1 is busybox's layer plus one: three layers would mean
	// the shared one was stored twice.
	if layers := d.storageLayers(t); len(layers) != 2 {
		t.Fatalf("store has %d layers (%v), want 2: images must share layers", len(layers), layers)
	}
	fs := func() (img, ctr *runtimeapi.FilesystemUsage) {
		resp, err := d.img.ImageFsInfo(ctx(t), &runtimeapi.ImageFsInfoRequest{})
		if err != nil || len(resp.GetImageFilesystems()) != 1 || len(resp.GetContainerFilesystems()) != 1 {
			t.Fatalf("ImageFsInfo: %v %v", resp, err)
		}
		return resp.GetImageFilesystems()[0], resp.GetContainerFilesystems()[0]
	}
	img, ctr := fs()
	if img.GetUsedBytes().GetValue() < 1<<20 || img.GetInodesUsed().GetValue() < 10 || img.GetFsId().GetMountpoint() == "" {
		t.Fatalf("image fs usage %+v", img)
	}
	if ctr.GetInodesUsed().GetValue() != 0 {
		t.Fatalf("no container yet, but the writable layers use %+v", ctr)
	}
	pod := d.podConfig(t, "fsinfo")
	podID := d.runPod(t, pod)
	d.startContainer(t, podID, pod, containerConfig("writer", "sh", "-c", "head -c 3000000 /dev/zero > /big; sleep 3600"))
	eventually(t, 15*time.Second, func() string {
		img2, ctr2 := fs()
		if ctr2.GetUsedBytes().GetValue() < 3000000 || ctr2.GetInodesUsed().GetValue() == 0 {
			return fmt.Sprintf("container fs usage %+v lacks the 3 MB file", ctr2)
		}
		// The running container's mounted root is not counted again.
		if img2.GetUsedBytes().GetValue() > img.GetUsedBytes().GetValue()+1<<20 {
			return fmt.Sprintf("image fs grew from %d to %d bytes with a container running", img.GetUsedBytes().GetValue(), img2.GetUsedBytes().GetValue())
		}
		return ""
	})
}

func TestImageInUseCannotBeRemoved(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	pod := d.podConfig(t, "inuse")
	podID := d.runPod(t, pod)
	ctrID := d.startContainer(t, podID, pod, containerConfig("sleeper", "sleep", "3600"))
	err := d.removeImage(t, busybox)
	wantImageCode(t, "RemoveImage of an image in use", err, codes.FailedPrecondition, "in use", ctrID)
	if d.imageStatus(t, busybox) == nil {
		t.Fatal("the image in use was removed")
	}
	if _, err := d.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: ctrID, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatal(err)
	}
	if err := d.removeImage(t, busybox); err != nil {
		t.Fatalf("RemoveImage once no container uses it: %v", err)
	}
}

func TestImageBadInput(t *testing.T) {
	closed := freePort(t)
	conf := registriesConf(t, fmt.Sprintf(`
[[registry]]
prefix = "unreachable.test"
location = "127.0.0.1:%d"
insecure = true

[[registry]]
prefix = "blocked.test"
location = "blocked.test"
blocked = true

[[registry]]
prefix = "mirrored.test"
location = "mirrored.test"
[[registry.mirror]]
location = "%s"
insecure = true
`, closed, mainRegistry))
	// The signature policy refuses one repository.
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default": [{"type": "insecureAcceptAnything"}],
  "transports": {"docker": {"registry.k8s.io/e2e-test-images/nginx": [{"type": "reject"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, withRegistriesConf(conf), withImageKey("signature_policy", fmt.Sprintf("%q", policy)))

	for _, ref := range []string{"Not A Ref!!", "registry.k8s.io/UPPER:1", "busybox:bad tag"} {
		wantImageCode(t, "PullImage "+ref, d.pullErr(t, ref, nil), codes.InvalidArgument)
		_, err := d.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		wantImageCode(t, "ImageStatus "+ref, err, codes.InvalidArgument)
	}
	wantImageCode(t, "PullImage of an image the registry lacks",
		d.pullErr(t, "registry.k8s.io/e2e-test-images/no-such-image:1", nil), codes.NotFound, "no-such-image")
	if st := d.imageStatus(t, "registry.k8s.io/e2e-test-images/no-such-image:1"); st != nil {
		t.Fatalf("status of an unknown image: %+v", st)
	}
	wantImageCode(t, "PullImage from an unreachable registry", d.pullErr(t, "unreachable.test/app:1", nil),
		codes.Unavailable, "unreachable.test", fmt.Sprintf("127.0.0.1:%d", closed))
	wantImageCode(t, "PullImage from an unlisted dead registry", d.pullErr(t, fmt.Sprintf("127.0.0.1:%d/app:1", closed), nil),
		codes.Unavailable, fmt.Sprintf("127.0.0.1:%d", closed))
	wantImageCode(t, "PullImage from a blocked registry", d.pullErr(t, "blocked.test/app:1", nil), codes.PermissionDenied, "blocked.test", "blocked")
	wantImageCode(t, "PullImage refused by the signature policy", d.pullErr(t, "registry.k8s.io/e2e-test-images/nginx:1.14-2", nil),
		codes.PermissionDenied, "nginx", "rejected")
	wantImageCode(t, "PullImage with a malformed auth", d.pullErr(t, busybox, &runtimeapi.AuthConfig{Auth: "%%%"}), codes.InvalidArgument, "auth")

	// A mirror serves what its registry (that does not exist) would.
	if id := d.pull(t, "mirrored.test/e2e-test-images/busybox:1.29-2"); id == "" {
		t.Fatal("no image from the mirror")
	}
}

func TestImagePullFromAuthRegistry(t *testing.T) {
	reg := startRegistry(t, registryOpts{auth: true})
	reg.push(t, "e2e-test-images/busybox:1.29-2")
	conf := registriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.addr))
	d := newDaemon(t, withRegistriesConf(conf))
	ref := reg.addr + "/e2e-test-images/busybox:1.29-2"

	wantImageCode(t, "PullImage without credentials", d.pullErr(t, ref, nil), codes.Unauthenticated, reg.addr)
	wantImageCode(t, "PullImage with a wrong password", d.pullErr(t, ref, &runtimeapi.AuthConfig{Username: reg.user, Password: "wrong"}),
		codes.Unauthenticated, reg.addr)
	for _, auth := range []*runtimeapi.AuthConfig{
		{Username: reg.user, Password: reg.pass},
		{Auth: base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + reg.pass))},
	} {
		if err := d.pullErr(t, ref, auth); err != nil {
			t.Fatalf("PullImage with %+v: %v", auth, err)
		}
		if st := d.imageStatus(t, ref); st == nil {
			t.Fatal("pulled image has no status")
		}
		if err := d.removeImage(t, ref); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImagePullFromTLSRegistry(t *testing.T) {
	reg := startRegistry(t, registryOpts{tls: true})
	reg.push(t, "e2e-test-images/busybox:1.29-2")
	// Not insecure: the certificate must verify.
	conf := registriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\n", reg.addr))
	d := newDaemon(t, withRegistriesConf(conf))
	ref := reg.addr + "/e2e-test-images/busybox:1.29-2"

	err := d.pullErr(t, ref, nil)
	if err == nil || !strings.Contains(err.Error(), reg.addr) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("PullImage from a registry with an untrusted certificate: %v", err)
	}
	// Trust its CA through certs.d beside registries.conf.
	certs := filepath.Join(filepath.Dir(conf), "certs.d", reg.addr)
	if err := os.MkdirAll(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(reg.cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.pullErr(t, ref, nil); err != nil {
		t.Fatalf("PullImage with the CA in certs.d: %v", err)
	}
}

func TestImageCorruptLayerLeavesNothing(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	path := "k8s-staging-cri-tools/test-image-1:latest"
	reg.push(t, path)
	layers := reg.manifestLayers(t, "k8s-staging-cri-tools/test-image-1", "latest")
	if len(layers) < 2 {
		t.Fatalf("want an image with two layers, got %v", layers)
	}
	// The last layer: the first may well be stored before it fails.
	reg.corruptBlob(t, layers[len(layers)-1])
	conf := registriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.addr))
	d := newDaemon(t, withRegistriesConf(conf))

	err := d.pullErr(t, reg.addr+"/"+path, nil)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "digest") || !strings.Contains(err.Error(), reg.addr) {
		t.Fatalf("pull of a corrupted layer: %v", err)
	}
	if l := d.storageLayers(t); len(l) != 0 {
		t.Fatalf("the failed pull left layers %v", l)
	}
	list, err := d.img.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.GetImages()) != 0 {
		t.Fatalf("images after the failed pull: %v %v", list.GetImages(), err)
	}
	if left := dirEntries(filepath.Join(d.dir, "root", "storage", "tmp")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
	// The store still works.
	d.pull(t, busybox)
}

func TestImageConcurrentPullsShareOneTransfer(t *testing.T) {
	proxy := startSlowProxy(t, 700*time.Millisecond, false)
	conf := registriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", proxy.addr))
	d := newDaemon(t, withRegistriesConf(conf))
	ref := proxy.addr + "/e2e-test-images/busybox:1.29-2"

	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Go(func() {
			resp, err := d.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			ids[i], errs[i] = resp.GetImageRef(), err
		})
	}
	// One caller gives up early, once the transfer is under way: the
	// others' pull goes on.
	d.waitLog(t, `msg="pulling image" image=`+ref)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, shortErr := d.img.PullImage(short, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	wg.Wait()
	wantImageCode(t, "a pull whose caller gave up", shortErr, codes.DeadlineExceeded)
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("pull %d: %q %v", i, ids[i], errs[i])
		}
	}
	if n := proxy.blobGets(); n != 1 {
		t.Errorf("a blob was downloaded %d times; concurrent pulls must share one transfer", n)
	}
	b, _ := os.ReadFile(d.logPath)
	if n := strings.Count(string(b), `msg="pulling image" image=`+ref); n != 1 {
		t.Errorf("%d transfers started for %s, want 1", n, ref)
	}
}

func TestImagePullProgressTimeout(t *testing.T) {
	proxy := startSlowProxy(t, 0, true)
	conf := registriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", proxy.addr))
	d := newDaemon(t, withRegistriesConf(conf), withImageKey("pull_progress_timeout", `"2s"`))
	start := time.Now()
	err := d.pullErr(t, proxy.addr+"/e2e-test-images/busybox:1.29-2", nil)
	if err == nil || !strings.Contains(err.Error(), "no pull progress for 2s") {
		t.Fatalf("a stalled pull: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("a stalled pull was cancelled only after %s", took)
	}
	if l := d.storageLayers(t); len(l) != 0 {
		t.Fatalf("the stalled pull left layers %v", l)
	}
}

// Without a policy.json (a host without containers-common), cradle's
// embedded default accepts images, so pulls work out of the box.
func TestPullWithoutPolicyFile(t *testing.T) {
	d := newDaemon(t, withImageKey("signature_policy", fmt.Sprintf("%q", filepath.Join(t.TempDir(), "missing-policy.json"))))
	if ref := d.pull(t, busybox); !strings.HasPrefix(ref, "sha256:") {
		t.Errorf("pull returned %q", ref)
	}
	b, _ := os.ReadFile(d.logPath)
	if !strings.Contains(string(b), "signature policy file missing") {
		t.Error("the fallback was not logged")
	}
}
