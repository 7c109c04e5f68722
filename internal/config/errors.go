package config

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/BurntSushi/toml"
)

// Error is one configuration problem. Load sets File, and Line when known,
// for problems that come from a file; Validate leaves them empty.
type Error struct {
	File string
	Line int
	Key  string // dotted TOML key, e.g. "runtime.cgroup_driver"; "" if none
	Msg  string // full description, naming Key when there is one
}

func (e *Error) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	default:
		return e.File + ": " + e.Msg
	}
}

// keyError is a problem with one key before a location is attached.
type keyError struct {
	key toml.Key
	msg string
}

func keyErrorf(key toml.Key, format string, args ...any) keyError {
	return keyError{key: key, msg: fmt.Sprintf("key %q: ", key.String()) + fmt.Sprintf(format, args...)}
}

// joinErrors turns key errors into *Error values, locating each with loc.
// A single problem is returned unwrapped.
func joinErrors(errs []keyError, loc func(toml.Key) (string, int)) error {
	out := make([]error, 0, len(errs))
	for _, ke := range errs {
		e := &Error{Key: ke.key.String(), Msg: ke.msg}
		if loc != nil {
			e.File, e.Line = loc(ke.key)
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}
