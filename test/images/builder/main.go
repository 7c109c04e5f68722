// Command builder assembles cradle's offline test images from extracted
// Debian packages into one OCI image layout, reproducibly: fixed mtimes,
// sorted tar entries, root ownership, gzip without name or time. Rebuilding
// from the same packages gives the same digests.
//
// It is run by test/images/build.sh, which downloads and extracts the .debs,
// compiles the two small C programs and pushes the result. It writes
// OUT/index.json with one ref per image and a list (-list) of lines
//
//	REF MANIFEST-DIGEST PATH:TAG [PATH:TAG...]
//
// telling build.sh where to push each image. With -large it builds only the
// pull benchmark's ~300 MB image (large.go).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		root  = flag.String("root", "", "directory the Debian packages were extracted into")
		pause = flag.String("pause", "", "static pause binary")
		nnp   = flag.String("nonewprivs", "", "static nonewprivs binary")
		agn   = flag.String("agnhost", "", "agnhost binary: also build the node e2e images (with -busybox-static)")
		bbs   = flag.String("busybox-static", "", "static busybox (make defconfig) for the node e2e busybox images")
		out   = flag.String("out", "", "OCI image layout directory to write")
		list  = flag.String("list", "", "file to write the push list to (default stdout)")
		large = flag.Bool("large", false, "build only the ~300 MB image of the pull benchmark (needs no -root, -pause or -nonewprivs)")
		epoch = flag.Int64("epoch", defaultEpoch(), "timestamp of every file and image (default $SOURCE_DATE_EPOCH, else Debian 12's release day)")
	)
	flag.Parse()
	created := time.Unix(*epoch, 0).UTC()
	if *large && *out != "" {
		if err := runLarge(*out, *list, created); err != nil {
			fmt.Fprintln(os.Stderr, "builder:", err)
			os.Exit(1)
		}
		return
	}
	if *root == "" || *pause == "" || *nnp == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(inputs{root: sysroot(*root), pause: *pause, nonewprivs: *nnp, agnhost: *agn, busyboxStatic: *bbs}, *out, *list, created); err != nil {
		fmt.Fprintln(os.Stderr, "builder:", err)
		os.Exit(1)
	}
}

func defaultEpoch() int64 {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return 1686355200 // 2023-06-10
}

func run(in inputs, out, list string, created time.Time) error {
	if err := checkInputs(in); err != nil {
		return err
	}
	imgs, err := images(in)
	if err != nil {
		return err
	}
	return write(imgs, out, list, created)
}

// runLarge writes the pull benchmark's image alone, into a layout of its own
// (so the test layout's blobs stay small and its rebuilds fast).
func runLarge(out, list string, created time.Time) error {
	imgs, err := largeImages(created)
	if err != nil {
		return err
	}
	return write(imgs, out, list, created)
}

// write puts imgs into the OCI layout out and writes the push list.
func write(imgs []*image, out, list string, created time.Time) error {
	lay, err := newLayout(out)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, img := range imgs {
		d, err := lay.add(img, created)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s %s\n", img.ref, d, strings.Join(img.push, " "))
	}
	if err := lay.finish(); err != nil {
		return err
	}
	if list == "" {
		_, err = os.Stdout.WriteString(b.String())
		return err
	}
	return os.WriteFile(list, []byte(b.String()), 0o644)
}
