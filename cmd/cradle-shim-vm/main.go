// cradle-shim-vm is a containerd runtime shim v2 that runs each pod in a
// qemu microVM (see internal/vmshim).
package main

import (
	"os"

	"github.com/cradle-runtime/cradle/internal/vmshim"
)

func main() { os.Exit(vmshim.Main(os.Args[1:])) }
