package config

import "testing"

func TestKeyLines(t *testing.T) {
	doc := `# comment = 1
top = "x" # trailing = 2

[a]
b = """
fake = 1
"""
c = [
  "d = 1", # e = 2
  { inline = 1 },
]
'quoted.key' = 'lit'
"basic\"q" = 1
g = { h = { i = 3 } }
date = 1979-05-27 07:32:00Z
x.y.z = true

[a.sub]
after = 1

  [[arr]]
  k = 1
`
	lines := keyLines(doc)
	for key, want := range map[string]int{
		"top":            2,
		"a":              4,
		"a.b":            5,
		"a.c":            8,
		`a."quoted.key"`: 12,
		`a."basic\"q"`:   13,
		"a.g":            14,
		"a.g.h.i":        14,
		"a.date":         15,
		"a.x":            16,
		"a.x.y.z":        16,
		"a.sub":          18,
		"a.sub.after":    19,
		"arr":            21,
		"arr.k":          22,
	} {
		if got := lines[key]; got != want {
			t.Errorf("line of %s = %d, want %d", key, got, want)
		}
	}
	for _, bogus := range []string{"fake", "a.fake", "e", "a.e", "a.inline", "inline", "comment"} {
		if l, ok := lines[bogus]; ok {
			t.Errorf("scanner invented key %s at line %d", bogus, l)
		}
	}
}
