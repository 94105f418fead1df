// Package allocs counts the heap allocations of code that splits its work
// across goroutines, for allocation tests. testing.AllocsPerRun sets
// GOMAXPROCS to 1, which changes how such code runs (kernels run inline,
// worker pools are never asked), so tests read runtime.MemStats around the
// calls instead.
package allocs

import (
	"math"
	"runtime"
)

// Fewest runs f calls times in each of rounds rounds and returns the
// fewest heap allocations (runtime.MemStats.Mallocs) and the fewest bytes
// (TotalAlloc) any round made, in total over its calls. Taking the best
// round keeps out what is not f's doing: a collection during a round makes
// the runtime remake its pools' caches and parking records, and on a
// loaded machine a worker that is late back at its queue may cost a
// goroutine.
func Fewest(rounds, calls int, f func()) (mallocs, bytes uint64) {
	mallocs, bytes = math.MaxUint64, math.MaxUint64
	for range rounds {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range calls {
			f()
		}
		runtime.ReadMemStats(&after)
		mallocs = min(mallocs, after.Mallocs-before.Mallocs)
		bytes = min(bytes, after.TotalAlloc-before.TotalAlloc)
	}
	return mallocs, bytes
}
