// Command cradle-pod-init holds a pod's shared PID namespace as its PID 1
// (internal/podinit). The daemon starts it; it is not meant to be run by
// hand.
package main

import (
	"os"

	"github.com/cradle-runtime/cradle/internal/podinit"
)

func main() { os.Exit(podinit.Run()) }
