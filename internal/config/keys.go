package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines returns the 1-based line on which each key or table of a TOML
// document first appears, indexed by toml.Key.String(). The toml package
// keeps key positions private, so error messages need this scan. It is only
// run on documents that already parsed, so it does not diagnose syntax: on
// anything unexpected it stops and returns what it found so far.
func keyLines(doc string) map[string]int {
	s := &keyScanner{src: doc, line: 1, lines: map[string]int{}}
	s.document()
	return s.lines
}

// lineOf returns the line of k, or of its closest enclosing table, or 0.
func lineOf(lines map[string]int, k toml.Key) int {
	for i := len(k); i > 0; i-- {
		if l, ok := lines[k[:i].String()]; ok {
			return l
		}
	}
	return 0
}

type keyScanner struct {
	src   string
	pos   int
	line  int
	lines map[string]int
}

func (s *keyScanner) eof() bool { return s.pos >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

// advance consumes one byte, counting lines.
func (s *keyScanner) advance() {
	if s.eof() {
		return
	}
	if s.src[s.pos] == '\n' {
		s.line++
	}
	s.pos++
}

// skipSpace skips blanks within a line.
func (s *keyScanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t' || c == '\r'; c = s.peek() {
		s.pos++
	}
}

// skipBlank skips blanks, newlines and comments.
func (s *keyScanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance()
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

// record notes line for k and every prefix of it not seen before.
func (s *keyScanner) record(k toml.Key, line int) {
	for i := 1; i <= len(k); i++ {
		ks := k[:i].String()
		if _, ok := s.lines[ks]; !ok {
			s.lines[ks] = line
		}
	}
}

func join(a, b toml.Key) toml.Key {
	return append(append(toml.Key{}, a...), b...)
}

func (s *keyScanner) document() {
	var table toml.Key
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		start, line := s.pos, s.line
		if s.peek() == '[' { // [table] or [[array.of.tables]]
			s.pos++
			if s.peek() == '[' {
				s.pos++
			}
			k, ok := s.key()
			if !ok {
				return
			}
			table = k
			s.record(k, line)
			for !s.eof() && s.peek() != '\n' && s.peek() != '#' {
				s.pos++
			}
		} else {
			k, ok := s.key()
			if !ok {
				return
			}
			s.skipSpace()
			if s.peek() != '=' {
				return
			}
			s.pos++
			full := join(table, k)
			s.record(full, line)
			s.value(full)
		}
		if s.pos == start {
			return
		}
	}
}

// key reads a possibly dotted key.
func (s *keyScanner) key() (toml.Key, bool) {
	var k toml.Key
	for {
		s.skipSpace()
		piece, ok := s.keyPiece()
		if !ok {
			return nil, false
		}
		k = append(k, piece)
		s.skipSpace()
		if s.peek() != '.' {
			return k, true
		}
		s.pos++
	}
}

func (s *keyScanner) keyPiece() (string, bool) {
	switch s.peek() {
	case '"':
		start := s.pos + 1
		s.pos++
		for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
			if s.peek() == '\\' {
				s.pos++
			}
			s.pos++
		}
		if s.peek() != '"' {
			return "", false
		}
		raw := s.src[start:s.pos]
		s.pos++
		if u, err := strconv.Unquote(`"` + raw + `"`); err == nil {
			return u, true
		}
		return raw, true
	case '\'':
		i := strings.IndexByte(s.src[s.pos+1:], '\'')
		if i < 0 {
			return "", false
		}
		piece := s.src[s.pos+1 : s.pos+1+i]
		s.pos += i + 2
		return piece, true
	}
	start := s.pos
	for c := s.peek(); c == '_' || c == '-' || (c >= '0' && c <= '9') ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); c = s.peek() {
		s.pos++
	}
	return s.src[start:s.pos], s.pos > start
}

// value skips one value. Keys inside inline tables are recorded under k;
// a nil k (array elements) records nothing, as toml reports no such keys.
func (s *keyScanner) value(k toml.Key) {
	s.skipSpace()
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.multiline(`"""`)
	case strings.HasPrefix(rest, `'''`):
		s.multiline(`'''`)
	case s.peek() == '"' || s.peek() == '\'':
		q := s.peek()
		s.pos++
		for !s.eof() && s.peek() != q && s.peek() != '\n' {
			if q == '"' && s.peek() == '\\' {
				s.pos++
			}
			s.pos++
		}
		s.pos++
	case s.peek() == '[':
		s.pos++
		s.items(']', func() bool { s.value(nil); return true })
	case s.peek() == '{':
		s.pos++
		s.items('}', func() bool {
			line := s.line
			sub, ok := s.key()
			if !ok {
				return false
			}
			s.skipSpace()
			if s.peek() != '=' {
				return false
			}
			s.pos++
			var full toml.Key
			if k != nil {
				full = join(k, sub)
				s.record(full, line)
			}
			s.value(full)
			return true
		})
	default: // number, bool or datetime (which may contain a space)
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek())) {
			s.pos++
		}
	}
}

// items reads comma separated elements up to close.
func (s *keyScanner) items(close byte, elem func() bool) {
	for {
		s.skipBlank()
		switch {
		case s.eof():
			return
		case s.peek() == close:
			s.pos++
			return
		case s.peek() == ',':
			s.pos++
			continue
		}
		before := s.pos
		if !elem() || s.pos == before {
			s.pos = len(s.src) // give up on malformed input
			return
		}
	}
}

func (s *keyScanner) multiline(delim string) {
	s.pos += len(delim)
	for !s.eof() {
		if strings.HasPrefix(s.src[s.pos:], delim) {
			s.pos += len(delim)
			// Up to two more quotes are content adjacent to the delimiter.
			for i := 0; i < 2 && s.peek() == delim[0]; i++ {
				s.pos++
			}
			return
		}
		if delim[0] == '"' && s.peek() == '\\' {
			s.advance()
		}
		s.advance()
	}
}
