package network

import "time"

// Variables, not constants, only so that tests can shorten them.
var (
	// cniTimeout bounds each ADD and DEL (a whole plugin chain): a hung
	// plugin must not hang the pod, or its removal, forever.
	cniTimeout = 2 * time.Minute

	// gcTimeout bounds GC, which the startup sweep runs while the daemon is
	// not serving yet; whatever it misses, the next start collects.
	gcTimeout = time.Minute
)
