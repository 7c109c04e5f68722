// Package cli holds cradle's subcommands: serve, config, check, status and version.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/version"
	"github.com/spf13/cobra"
)

// flags that override the config files.
type overrides struct {
	configPath, configDir, listen, root, runroot, logLevel, logFormat string
}

func (o *overrides) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", "", "config file (default "+config.DefaultPath+")")
	f.StringVar(&o.configDir, "config-dir", "", "drop-in directory, *.toml applied in lexical order (default "+config.DefaultDropinDir+")")
	f.StringVar(&o.listen, "listen", "", "CRI socket, unix:///PATH")
	f.StringVar(&o.root, "root", "", "persistent state directory")
	f.StringVar(&o.runroot, "runroot", "", "volatile state directory")
	f.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "", "text or json")
}

// load reads the config files and applies the flags on top.
func (o *overrides) load() (*config.Config, error) {
	path, dropins := config.DefaultPath, config.DefaultDropinDir
	var opts []config.LoadOption
	if o.configPath != "" {
		path = o.configPath
		opts = append(opts, config.RequireFile())
	}
	if o.configDir != "" {
		dropins = o.configDir
	}
	cfg, err := config.Load(path, dropins, opts...)
	if err != nil {
		return nil, err
	}
	for _, kv := range []struct {
		flag string
		dst  *string
	}{{o.listen, &cfg.Listen}, {o.root, &cfg.Root}, {o.runroot, &cfg.RunRoot}, {o.logLevel, &cfg.LogLevel}, {o.logFormat, &cfg.LogFormat}} {
		if kv.flag != "" {
			*kv.dst = kv.flag
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	return cfg, nil
}

// Root is the cradle command tree.
func Root() *cobra.Command {
	root := &cobra.Command{
		Use:           "cradle",
		Short:         "cradle is a Kubernetes CRI container runtime",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), configCmd(), checkCmd(), statusCmd(), versionCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "cradle %s\nCRI API v1\n", version.Version)
		},
	}
}

func configCmd() *cobra.Command {
	var o overrides
	var def bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "print the effective (or --default) configuration as TOML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if !def {
				var err error
				if cfg, err = o.load(); err != nil {
					return err
				}
			}
			return cfg.WriteTOML(cmd.OutOrStdout())
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&def, "default", false, "print the built-in defaults")
	return cmd
}

// logLevel is the daemon's level; SIGHUP changes it without a restart.
var logLevel = new(slog.LevelVar)

func parseLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func setupLogging(w io.Writer, level, format string) {
	logLevel.Set(parseLevel(level))
	opts := &slog.HandlerOptions{Level: logLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == config.LogFormatJSON {
		h = slog.NewJSONHandler(w, opts)
	}
	slog.SetDefault(slog.New(h))
	routeLogrus(logLevel.Level())
}
