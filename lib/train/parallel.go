package train

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunk is a range [lo, hi) of one parameter's elements.
type chunk struct{ p, lo, hi int }

const chunkSize = 1 << 16

// chunks splits lengths into ranges of at most chunkSize elements, in one
// allocation.
func chunks(lengths []int) []chunk {
	n := 0
	for _, l := range lengths {
		n += (l + chunkSize - 1) / chunkSize
	}
	out := make([]chunk, 0, n)
	for p, l := range lengths {
		for lo := 0; lo < l; lo += chunkSize {
			out = append(out, chunk{p, lo, min(lo+chunkSize, l)})
		}
	}
	return out
}

// parallel runs f over cs on GOMAXPROCS goroutines (the caller one of
// them), each taking the next chunk from a shared counter. Results must
// not depend on the split: f works element by element.
func parallel(cs []chunk, f func(c chunk)) {
	w := min(runtime.GOMAXPROCS(0), len(cs))
	if w <= 1 {
		for _, c := range cs {
			f(c)
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(cs)); i = next.Add(1) - 1 {
			f(cs[i])
		}
	}
	var wg sync.WaitGroup
	for range w - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}
