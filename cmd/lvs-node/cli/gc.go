package cli

import (
	"os"
	"runtime/debug"
)

// oneShotHeap is the heap size up to which a one-shot command does not
// collect garbage. What decoding and planning 10,000 services holds live
// at its peak stays well under it (with 96 MiB the collector would run
// over and over).
const oneShotHeap = 128 << 20

// collectLate makes the garbage collector of a process that runs once
// (director --once) wait until the heap reaches oneShotHeap instead of
// collecting whenever it doubles: starting from a few megabytes, those
// collections cost as much as decoding a 1,000-service file, and the
// process exits before the garbage matters. The limit bounds the
// process's memory as before. GOGC or GOMEMLIMIT in the environment win.
func collectLate() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(oneShotHeap)
}
