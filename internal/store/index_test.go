package store

import (
	"errors"
	"testing"
)

func TestIndexPrefix(t *testing.T) {
	x := NewIndex[string]()
	x.Add("abc123", "one")
	x.Add("abd456", "two")
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{"abc123", "one", nil},
		{"abc", "one", nil},
		{"abd", "two", nil},
		{"ab", "", ErrAmbiguous},
		{"zz", "", ErrNotFound},
		{"", "", ErrNotFound},
	}
	for _, c := range cases {
		got, err := x.Get(c.in)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestNames(t *testing.T) {
	n := NewNames()
	if _, ok := n.Reserve("a", "1"); !ok {
		t.Fatal("first reserve failed")
	}
	if h, ok := n.Reserve("a", "2"); ok || h != "1" {
		t.Fatalf("second reserve = %q, %v", h, ok)
	}
	n.Release("a", "2") // not the holder: no effect
	if _, ok := n.Lookup("a"); !ok {
		t.Fatal("released by non-holder")
	}
	n.Release("a", "1")
	if _, ok := n.Reserve("a", "2"); !ok {
		t.Fatal("reserve after release failed")
	}
}
