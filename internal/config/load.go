package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// LoadOption adjusts Load.
type LoadOption func(*loadOptions)

type loadOptions struct {
	requireFile bool
}

// RequireFile makes a missing main file an error. Use it when the path was
// given explicitly (e.g. --config); a missing DefaultPath is normal.
func RequireFile() LoadOption {
	return func(o *loadOptions) { o.requireFile = true }
}

// Load builds the configuration: Default(), then the main file at path (if
// present; "" skips it), then every *.toml file in dropinDir in lexical order
// ("" or a missing directory means none). Each file overrides only the keys
// it sets, handler tables included. The result is validated; errors name
// the file, line and key responsible.
func Load(path, dropinDir string, opts ...LoadOption) (*Config, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	l := &loader{cfg: Default(), origins: map[string]origin{}}
	if path != "" {
		if err := l.apply(path, !o.requireFile); err != nil {
			return nil, err
		}
	}
	files, err := dropins(dropinDir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := l.apply(f, false); err != nil {
			return nil, err
		}
	}
	if errs := l.cfg.check(); len(errs) > 0 {
		return nil, joinErrors(errs, l.locate)
	}
	return l.cfg, nil
}

// dropins lists the drop-in files of dir in lexical order. Hidden files are
// skipped since editors leave backup and swap files there.
func dropins(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config drop-in directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".toml") {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() { // follows symlinks
			continue
		}
		files = append(files, p)
	}
	return files, nil
}

// origin is where a key was last set.
type origin struct {
	file string
	line int
}

type loader struct {
	cfg     *Config
	origins map[string]origin // by toml.Key.String()
}

// apply decodes one file over l.cfg.
func (l *loader) apply(path string, missingOK bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if missingOK && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("reading config file: %w", err)
	}
	doc := string(data)

	var raw map[string]any
	if _, err := toml.Decode(doc, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &Error{File: path, Line: parseErrorLine(doc, pe), Msg: "invalid TOML: " + pe.Message}
		}
		return &Error{File: path, Msg: err.Error()}
	}
	lines := keyLines(doc)
	locate := func(k toml.Key) (string, int) { return path, lineOf(lines, k) }
	var errs []keyError
	checkSchema(raw, configType, nil, &errs)
	if len(errs) > 0 {
		return joinErrors(errs, locate)
	}

	prev := cloneHandlers(l.cfg.Runtime.Handlers)
	md, err := toml.Decode(doc, l.cfg)
	if err != nil { // checkSchema should have caught it
		return &Error{File: path, Msg: err.Error()}
	}
	mergeHandlers(l.cfg, prev, md)
	// Safety net in case checkSchema and the decoder ever disagree.
	for _, k := range md.Undecoded() {
		errs = append(errs, keyError{key: k, msg: fmt.Sprintf("unknown key %q", k.String())})
	}
	if len(errs) > 0 {
		return joinErrors(errs, locate)
	}
	for _, k := range md.Keys() {
		l.origins[k.String()] = origin{file: path, line: lineOf(lines, k)}
	}
	return nil
}

// locate finds the file and line that last set key. A handler key that was
// never set (e.g. a missing type) is attributed to the handler's table.
func (l *loader) locate(key toml.Key) (string, int) {
	if o, ok := l.origins[key.String()]; ok {
		return o.file, o.line
	}
	if len(key) > 3 && key[0] == "runtime" && key[1] == "handlers" {
		if o, ok := l.origins[key[:3].String()]; ok {
			return o.file, o.line
		}
	}
	return "", 0
}

// parseErrorLine derives the line from the error's byte offset: for an
// unexpected newline toml reports the following line.
func parseErrorLine(doc string, pe toml.ParseError) int {
	if pe.Position.Start < 0 || pe.Position.Start > len(doc) {
		return pe.Position.Line
	}
	return 1 + strings.Count(doc[:pe.Position.Start], "\n")
}
