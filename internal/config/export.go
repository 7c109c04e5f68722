package config

import (
	"bytes"
	"fmt"

	"github.com/BurntSushi/toml"
)

// Map is c as a tree keyed by the TOML key names, for JSON output (the
// verbose CRI Status, cradle status -o json).
func (c *Config) Map() (map[string]any, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	out := map[string]any{}
	if _, err := toml.Decode(buf.String(), &out); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	return out, nil
}
