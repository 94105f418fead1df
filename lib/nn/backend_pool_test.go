package nn

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelFor checks that every index is visited exactly once, for
// sizes around the chunking boundaries, from many callers at once and with
// parallelFor nested inside a chunk (which must not deadlock when all pool
// workers are busy).
func TestParallelFor(t *testing.T) {
	visit := func(n int, nested bool) []int32 {
		seen := make([]int32, n)
		parallelFor(n, func(lo, hi int) {
			if nested {
				parallelFor(hi-lo, func(a, b int) {
					for i := lo + a; i < lo+b; i++ {
						atomic.AddInt32(&seen[i], 1)
					}
				})
				return
			}
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&seen[i], 1)
			}
		})
		return seen
	}
	var wg sync.WaitGroup
	for caller := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range []int{0, 1, 2, 3, 7, 64, 1001} {
				for _, nested := range []bool{false, true} {
					for i, c := range visit(n, nested) {
						if c != 1 {
							t.Errorf("caller %d, n %d, nested %v: index %d visited %d times", caller, n, nested, i, c)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestParallelForAllocations checks that a parallelFor with a
// non-capturing body allocates nothing once the pool runs.
func TestParallelForAllocations(t *testing.T) {
	if numWorkers() < 2 {
		t.Skip("one worker: parallelFor runs inline")
	}
	body := func(lo, hi int) {}
	parallelFor(100, body) // start the pool
	// Not testing.AllocsPerRun: it sets GOMAXPROCS to 1, where
	// parallelFor runs inline and the pool is never asked.
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		parallelFor(100, body)
	}
	runtime.ReadMemStats(&after)
	// A few objects of the runtime's own after a collection (goroutine
	// parking records) are tolerated; one per call is ours.
	if n := after.Mallocs - before.Mallocs; n >= runs/2 {
		t.Errorf("parallelFor: %d allocations in %d calls, want none", n, runs)
	}
}
