package compute

import (
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/detlab/detlab/internal/allocs"
)

// poolCases are products that take each parallel path of the Go backend
// on two or more workers: C split by rows and by columns, k split, the
// fused epilogue, and the bfloat16 forms.
var poolCases = []struct {
	name    string
	m, n, k int
	bf16    bool
	ep      bool
}{
	{"rows", 200, 64, 300, false, false},
	{"cols", 24, 700, 300, false, false},
	{"split-k", 64, 64, 4096, false, false},
	{"epilogue", 130, 90, 200, false, true},
	{"bf16 rows", 300, 64, 300, true, false},
	{"bf16 split-k", 64, 64, 4096, true, false},
	{"bf16 epilogue", 200, 90, 300, true, true},
}

// poolProduct returns a function computing case i into c, on the Go
// kernels (not a native library).
func poolProduct(t testing.TB, i int, rng *rand.Rand) (run func(c []float32), c []float32) {
	pc := poolCases[i]
	kern := bestKernel()
	kern16 := bf16Native
	if kern16 == nil {
		kern16 = goBF16Kernel
	}
	a, b := randSlice(rng, pc.m*pc.k), randSlice(rng, pc.k*pc.n)
	ep := Epilogue{Scale: randSlice(rng, pc.m), Shift: randSlice(rng, pc.m), ReLU: true}
	c = make([]float32, pc.m*pc.n)
	m, n, k := pc.m, pc.n, pc.k
	switch {
	case pc.bf16 && pc.ep:
		run = func(c []float32) { sgemmBF16KernelEp(kern16, false, false, m, n, k, a, k, nil, b, n, nil, c, n, &ep) }
	case pc.bf16:
		run = func(c []float32) { sgemmBF16Kernel(kern16, false, false, m, n, k, 1.5, a, k, b, n, 0, c, n) }
	case pc.ep:
		run = func(c []float32) { sgemmKernelEp(kern, false, false, m, n, k, a, k, b, n, nil, c, n, &ep) }
	default:
		run = func(c []float32) { sgemmKernel(kern, false, false, m, n, k, 1.5, a, k, b, n, 0, c, n) }
	}
	return run, c
}

// TestParallelGemmAllocatesNothing checks that once warm, a parallel
// product takes its workers, tasks and buffers from pools: a training
// step runs hundreds of them.
func TestParallelGemmAllocatesNothing(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS >= 2 for the parallel paths")
	}
	for i, pc := range poolCases {
		t.Run(pc.name, func(t *testing.T) {
			w := gemmWorkers(pc.m, pc.n, pc.k)
			if pc.bf16 {
				w, _ = bf16Plan(pc.m, pc.n, pc.k)
			}
			if w < 2 {
				t.Fatalf("%dx%dx%d runs on %d worker: the case does not test the pool", pc.m, pc.n, pc.k, w)
			}
			run, c := poolProduct(t, i, rand.New(rand.NewSource(int64(i))))
			run(c) // warm-up: pools fill
			const runs = 20
			// testing.AllocsPerRun would set GOMAXPROCS to 1 (serial
			// products). The runtime allocates a few of its own objects
			// after a collection (the parking records of a caller that
			// waits on a channel, more often on a loaded machine, where
			// the spins run out: a full run here once counted 11): the
			// fewest of three rounds; one allocation per product or more
			// is ours.
			if n, _ := allocs.Fewest(3, runs, func() { run(c) }); n >= runs/2 {
				t.Errorf("%d allocations in %d products, want none", n, runs)
			}
		})
	}
}

// TestParallelGemmConcurrentAndNested runs every case from several
// goroutines at once, and from inside the parts of another parallel task,
// and checks each result is bit-identical to the case run alone.
func TestParallelGemmConcurrentAndNested(t *testing.T) {
	type job struct {
		run       func([]float32)
		want, got []float32
	}
	var jobs []job
	for i := range poolCases {
		run, c := poolProduct(t, i, rand.New(rand.NewSource(int64(i))))
		run(c)
		jobs = append(jobs, job{run, c, make([]float32, len(c))})
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				jj := (j + g) % len(jobs)
				got := make([]float32, len(jobs[jj].want))
				jobs[jj].run(got)
				if !slices.Equal(got, jobs[jj].want) {
					t.Errorf("goroutine %d: %s differs when run concurrently", g, poolCases[jj].name)
				}
			}
		}()
	}
	wg.Wait()
	nested := &nestTask{jobs: make([]func([]float32), len(jobs)), out: make([][]float32, len(jobs))}
	for j := range jobs {
		nested.jobs[j], nested.out[j] = jobs[j].run, jobs[j].got
	}
	runParallel(len(jobs), nested)
	for j := range jobs {
		if !slices.Equal(jobs[j].got, jobs[j].want) {
			t.Errorf("%s differs when run inside another parallel task", poolCases[j].name)
		}
	}
}

// nestTask runs product w in part w.
type nestTask struct {
	jobs []func([]float32)
	out  [][]float32
}

func (n *nestTask) Run(w int) { n.jobs[w](n.out[w]) }

// TestRunParallelRunsEveryPartOnce checks the pool's bookkeeping: every
// part runs exactly once, whatever the number of parts (more than the
// workers, so some run on the caller).
func TestRunParallelRunsEveryPartOnce(t *testing.T) {
	for _, parts := range []int{1, 2, 3, 17} {
		c := &countTask{n: make([]int, parts)}
		runParallel(parts, c)
		for w, n := range c.n {
			if n != 1 {
				t.Errorf("%d parts: part %d ran %d times", parts, w, n)
			}
		}
	}
}

type countTask struct {
	mu sync.Mutex
	n  []int
}

func (c *countTask) Run(w int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w < len(c.n) {
		c.n[w]++
	}
}
