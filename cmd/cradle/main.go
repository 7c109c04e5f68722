// Command cradle is the cradle CRI daemon and its tools.
package main

import (
	"fmt"
	"os"

	"go.podman.io/storage/pkg/reexec"

	"github.com/cradle-runtime/cradle/internal/cli"
)

func main() {
	// The daemon re-executes itself for helpers (the user namespace
	// holder, containers/storage's): run the helper when this is one.
	if reexec.Init() {
		return
	}
	if err := cli.Root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cradle:", err)
		os.Exit(1)
	}
}
