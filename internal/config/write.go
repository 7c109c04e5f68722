package config

import (
	"encoding"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// WriteTOML prints c as TOML with a one-line comment above every key and
// table, taken from the `comment` struct tags. Load accepts the output
// unchanged. Fields are printed by reflection so new fields cannot be
// forgotten.
func (c *Config) WriteTOML(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# cradle configuration.\n")
	b.WriteString("# Each *.toml file in the drop-in directory (default " + DefaultDropinDir + ")\n")
	b.WriteString("# overrides only the keys it sets, in lexical file order.\n")
	writeTable(&b, nil, reflect.ValueOf(c).Elem())
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTable prints the plain keys of struct v, then its sub-tables, as
// TOML requires keys to precede the tables nested in the same table.
func writeTable(b *strings.Builder, key toml.Key, v reflect.Value) {
	t := v.Type()
	var tables []int
	for i := range t.NumField() {
		f := t.Field(i)
		if k := f.Type.Kind(); k == reflect.Struct || k == reflect.Map {
			tables = append(tables, i)
			continue
		}
		fmt.Fprintf(b, "\n# %s\n%s = %s\n", f.Tag.Get("comment"), toml.Key{tomlName(f)}, formatValue(v.Field(i)))
	}
	for _, i := range tables {
		f := t.Field(i)
		sub := join(key, toml.Key{tomlName(f)})
		fmt.Fprintf(b, "\n# %s\n", f.Tag.Get("comment"))
		if f.Type.Kind() == reflect.Struct {
			fmt.Fprintf(b, "[%s]\n", sub)
			writeTable(b, sub, v.Field(i))
			continue
		}
		// A map of tables (handlers): one [key.NAME] table per entry.
		m := v.Field(i)
		names := make([]string, 0, m.Len())
		for _, k := range m.MapKeys() {
			names = append(names, k.String())
		}
		slices.Sort(names)
		for j, name := range names {
			entry := join(sub, toml.Key{name})
			if j > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(b, "[%s]\n", entry)
			writeTable(b, entry, m.MapIndex(reflect.ValueOf(name)))
		}
	}
}

// formatValue renders a scalar or string slice as a TOML value.
func formatValue(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		if err != nil {
			panic(err) // Duration.MarshalText cannot fail
		}
		return quote(string(text))
	}
	switch v.Kind() {
	case reflect.String:
		return quote(v.String())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Slice:
		items := make([]string, v.Len())
		width := 0
		for i := range items {
			items[i] = formatValue(v.Index(i))
			width += len(items[i]) + 2
		}
		if width <= 60 {
			return "[" + strings.Join(items, ", ") + "]"
		}
		// One element per line keeps long lists readable and diffable.
		return "[\n  " + strings.Join(items, ",\n  ") + ",\n]"
	}
	panic(fmt.Sprintf("config: no TOML form for %s", v.Type()))
}

// quote renders s as a TOML basic string. strconv.Quote is not usable: TOML
// has no \x or \a escapes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
