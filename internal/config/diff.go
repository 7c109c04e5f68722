package config

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/BurntSushi/toml"
)

// Change is one key whose value differs between two configurations. For a
// handler that was added or removed, Key is the handler's table
// (runtime.handlers.NAME) and Old or New is empty.
type Change struct {
	Key      toml.Key
	Old, New string
}

// Diff lists every key whose value differs from a to b, in the order
// cradle config prints them. It compares effective values, so a key set
// in a file to its default is no change.
func Diff(a, b *Config) []Change {
	var out []Change
	diffValue(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), nil, &out)
	return out
}

func diffValue(a, b reflect.Value, key toml.Key, out *[]Change) {
	switch {
	case a.Kind() == reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			diffValue(a.Field(i), b.Field(i), append(slices.Clone(key), tomlName(f)), out)
		}
	case a.Kind() == reflect.Map:
		names := map[string]bool{}
		for _, k := range a.MapKeys() {
			names[k.String()] = true
		}
		for _, k := range b.MapKeys() {
			names[k.String()] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		slices.Sort(sorted)
		for _, n := range sorted {
			k := reflect.ValueOf(n)
			av, bv := a.MapIndex(k), b.MapIndex(k)
			hk := append(slices.Clone(key), n)
			switch {
			case !av.IsValid():
				*out = append(*out, Change{Key: hk, New: "added"})
			case !bv.IsValid():
				*out = append(*out, Change{Key: hk, Old: "defined", New: "removed"})
			default:
				diffValue(av, bv, hk, out)
			}
		}
	default:
		// Nil and empty slices are the same setting.
		if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
			return
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, Change{Key: key, Old: fmt.Sprint(a.Interface()), New: fmt.Sprint(b.Interface())})
		}
	}
}
