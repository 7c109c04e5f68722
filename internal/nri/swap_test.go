package nri

import (
	"runtime"
	"testing"
)

// waitFor spins until cond holds under l.mu; the lock's state is the event.
func waitFor(l *swapLock, cond func() bool) {
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

// A user may take the lock again while a replacement waits for it (a hook's
// eviction stops a container, whose hook takes it too); the replacement
// gets it once the last user is done, and users wait for the replacement.
func TestSwapLockPrefersUsers(t *testing.T) {
	var l swapLock
	l.init()
	l.rlock()
	locked := make(chan struct{})
	go func() {
		l.lock()
		close(locked)
	}()
	waitFor(&l, func() bool { return l.waiting == 1 })
	l.rlock() // would deadlock behind a waiting sync.RWMutex writer
	l.runlock()
	select {
	case <-locked:
		t.Fatal("replacement took the lock while a user held it")
	default:
	}
	l.runlock()
	<-locked
	used := make(chan struct{})
	go func() {
		l.rlock()
		close(used)
		l.runlock()
	}()
	select {
	case <-used:
		t.Fatal("a user took the lock during a replacement")
	default:
	}
	l.unlock()
	<-used
}
