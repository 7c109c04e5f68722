package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

var (
	configType      = reflect.TypeFor[Config]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkSchema compares a document decoded into generic maps with the shape
// of Config (type t at key). It runs before decoding into Config because
// toml.Decode matches field names case-insensitively and its type errors do
// not carry the file name; checking first gives exact key names and uniform
// "file:line: key" messages.
func checkSchema(v any, t reflect.Type, key toml.Key, errs *[]keyError) {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := v.(string)
		if !ok {
			*errs = append(*errs, keyErrorf(key, "want a string, got %s", tomlType(v)))
			return
		}
		u := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(s)); err != nil {
			*errs = append(*errs, keyErrorf(key, "%v", err))
		}
		return
	}
	want, ok := "", false
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		want = "a table"
		var m map[string]any
		if m, ok = v.(map[string]any); !ok {
			break
		}
		for _, name := range slices.Sorted(maps.Keys(m)) {
			sub := join(key, toml.Key{name})
			if t.Kind() == reflect.Map {
				checkSchema(m[name], t.Elem(), sub, errs)
				continue
			}
			f, found := fieldByKey(t, name)
			if !found {
				*errs = append(*errs, keyError{key: sub, msg: fmt.Sprintf("unknown key %q", sub.String())})
				continue
			}
			checkSchema(m[name], f.Type, sub, errs)
		}
	case reflect.Slice:
		want = "an array"
		rv := reflect.ValueOf(v)
		if ok = rv.Kind() == reflect.Slice; ok {
			for i := range rv.Len() {
				checkSchema(rv.Index(i).Interface(), t.Elem(), key, errs)
			}
		}
	case reflect.String:
		want = "a string"
		_, ok = v.(string)
	case reflect.Int, reflect.Int64:
		want = "an integer"
		_, ok = v.(int64)
	case reflect.Bool:
		want = "a boolean"
		_, ok = v.(bool)
	}
	if !ok {
		*errs = append(*errs, keyErrorf(key, "want %s, got %s", want, tomlType(v)))
	}
}

// fieldByKey finds the struct field whose toml tag is exactly name.
func fieldByKey(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); tomlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a datetime"
	}
	if reflect.ValueOf(v).Kind() == reflect.Slice {
		return "an array"
	}
	return "an unsupported value"
}

// mergeHandlers restores key-by-key merging for handler tables. toml.Decode
// replaces a whole map entry with a fresh value, so a drop-in setting only
// [runtime.handlers.runc] path would otherwise lose the handler's type.
func mergeHandlers(cfg *Config, prev map[string]Handler, md toml.MetaData) {
	for name, decoded := range cfg.Runtime.Handlers {
		old, existed := prev[name]
		if !existed || !md.IsDefined("runtime", "handlers", name) {
			continue
		}
		dst, src := reflect.ValueOf(&old).Elem(), reflect.ValueOf(decoded)
		for i := range dst.NumField() {
			if md.IsDefined("runtime", "handlers", name, tomlName(dst.Type().Field(i))) {
				dst.Field(i).Set(src.Field(i))
			}
		}
		cfg.Runtime.Handlers[name] = old
	}
}
