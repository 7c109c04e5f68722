package server

import (
	"errors"
	"testing"
)

func TestSendPages(t *testing.T) {
	for _, n := range []int{0, 1, streamPage, streamPage + 1, 3*streamPage + 7} {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		var got []int
		pages := 0
		err := sendPages(items, func(p []int) error {
			if len(p) == 0 || len(p) > streamPage {
				t.Fatalf("n=%d: a page of %d items", n, len(p))
			}
			pages++
			got = append(got, p...)
			return nil
		})
		if err != nil || len(got) != n {
			t.Fatalf("n=%d: got %d items, %v", n, len(got), err)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("n=%d: item %d is %d: order lost", n, i, v)
			}
		}
		if want := (n + streamPage - 1) / streamPage; pages != want {
			t.Errorf("n=%d: %d pages, want %d", n, pages, want)
		}
	}
	boom := errors.New("boom")
	if err := sendPages(make([]int, 2*streamPage), func([]int) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("send error not returned: %v", err)
	}
}
