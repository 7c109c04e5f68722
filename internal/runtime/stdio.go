package runtime

import (
	"errors"
	"io"
	"time"
)

// FirstSizeWait is how long a tty exec waits for the client's first
// terminal size, so the pty is created with it rather than resized after
// the process may have asked.
const FirstSizeWait = 100 * time.Millisecond

// FirstSize waits up to FirstSizeWait for the client's first terminal
// size; nil when none (or an empty one) came.
func FirstSize(c <-chan TermSize) *TermSize {
	if c == nil {
		return nil
	}
	t := time.NewTimer(FirstSizeWait)
	defer t.Stop()
	select {
	case s, ok := <-c:
		if ok && s.Width > 0 && s.Height > 0 {
			return &s
		}
	case <-t.C:
	}
	return nil
}

// CopyChunks copies in pieces of at most size bytes and returns the read
// error (nil at EOF) or the write error: each piece reaches the client as
// it was read, for interactive output.
func CopyChunks(dst io.Writer, src io.Reader, size int) error {
	buf := make([]byte, size)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
