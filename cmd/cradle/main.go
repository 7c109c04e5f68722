// Command cradle is the cradle CRI daemon and its tools.
package main

import (
	"fmt"
	"os"

	"github.com/cradle-runtime/cradle/internal/cli"
)

func main() {
	if err := cli.Root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cradle:", err)
		os.Exit(1)
	}
}
