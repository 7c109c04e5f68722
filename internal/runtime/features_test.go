package runtime

import "testing"

func TestParseFeatures(t *testing.T) {
	for doc, want := range map[string]Features{
		`{"mountOptions":["ro","rro"],"linux":{"mountExtensions":{"idmap":{"enabled":true}}}}`: {RecursiveReadOnly: true, IDMappedMounts: true},
		`{"mountOptions":["ro"],"linux":{"mountExtensions":{"idmap":{"enabled":false}}}}`:      {},
		`{"mountOptions":["rro"]}`: {RecursiveReadOnly: true},
		`not json`:                 {},
	} {
		if got := parseFeatures([]byte(doc)); got != want {
			t.Errorf("parseFeatures(%s) = %+v, want %+v", doc, got, want)
		}
	}
}
