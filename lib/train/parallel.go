package train

import (
	"runtime"
	"sync"
)

// chunk is a range [lo, hi) of one parameter's elements.
type chunk struct{ p, lo, hi int }

const chunkSize = 1 << 16

// chunks splits lengths into ranges of at most chunkSize elements.
func chunks(lengths []int) []chunk {
	var out []chunk
	for p, n := range lengths {
		for lo := 0; lo < n; lo += chunkSize {
			out = append(out, chunk{p, lo, min(lo+chunkSize, n)})
		}
	}
	return out
}

// parallel runs f over cs on GOMAXPROCS goroutines. Results must not depend
// on the split: f works element by element.
func parallel(cs []chunk, f func(c chunk)) {
	w := min(runtime.GOMAXPROCS(0), len(cs))
	if w <= 1 {
		for _, c := range cs {
			f(c)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan chunk, len(cs))
	for _, c := range cs {
		next <- c
	}
	close(next)
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				f(c)
			}
		}()
	}
	wg.Wait()
}
