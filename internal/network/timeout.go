package network

import "time"

// cniTimeout bounds each CNI call (ADD, DEL, GC) the manager makes, within
// the caller's context: a hung plugin must not hang the pod forever.
const cniTimeout = 2 * time.Minute
