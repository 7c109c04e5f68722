package network

import "time"

// cniTimeout bounds one CNI call; a hung plugin must not hang the pod forever.
const cniTimeout = 2 * time.Minute
