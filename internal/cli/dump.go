package cli

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"
)

// dumpOnSIGUSR1 writes every goroutine's stack to a file under dir on each
// SIGUSR1 and logs its path, as containerd does: a look inside a daemon
// that seems stuck, without stopping it.
func dumpOnSIGUSR1(dir string) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	for range usr1 {
		path, err := dumpGoroutines(dir)
		if err != nil {
			slog.Error("goroutine dump failed", "error", err)
			continue
		}
		slog.Info("goroutine stacks dumped", "path", path)
	}
}

func dumpGoroutines(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create dump dir: %w", err)
	}
	path := filepath.Join(dir, "goroutines-"+time.Now().UTC().Format("20060102T150405.000000000Z")+".txt")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create dump file: %w", err)
	}
	defer f.Close()
	// debug=2: the panic-style full stacks, each goroutine with its state.
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		return "", fmt.Errorf("write goroutine stacks: %w", err)
	}
	return path, nil
}
