// Package version holds the build's version, set with -ldflags -X.
package version

// Version is overridden at link time by the Makefile.
var Version = "0.1.0-dev"
