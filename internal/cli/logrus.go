package cli

import (
	"context"
	"io"
	"log/slog"

	"github.com/sirupsen/logrus"
)

// routeLogrus sends the libraries that log through logrus (containers/image,
// containers/storage, NRI) into slog, so every line the daemon writes is
// structured the same way.
func routeLogrus(level slog.Level) {
	logrus.SetOutput(io.Discard)
	setLogrusLevel(level)
	logrus.AddHook(slogHook{})
}

// setLogrusLevel keeps logrus from building entries slog would drop.
func setLogrusLevel(level slog.Level) {
	switch {
	case level <= slog.LevelDebug:
		logrus.SetLevel(logrus.DebugLevel)
	case level <= slog.LevelInfo:
		logrus.SetLevel(logrus.InfoLevel)
	case level <= slog.LevelWarn:
		logrus.SetLevel(logrus.WarnLevel)
	default:
		logrus.SetLevel(logrus.ErrorLevel)
	}
}

type slogHook struct{}

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelInfo
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level >= logrus.DebugLevel:
		level = slog.LevelDebug
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !slog.Default().Enabled(ctx, level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "source", "logrus")
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	slog.Log(ctx, level, e.Message, attrs...)
	return nil
}
