// Package stats reads the resource usage of containers and pods: CPU,
// memory and process counts from cgroups (v1 or v2), interface counters
// from a pinned network namespace, and keeps the latest sample of each in
// a cache so that the CRI calls never read the kernel on the hot path. It
// also turns samples into CRI stats and cadvisor-style metrics.
package stats
