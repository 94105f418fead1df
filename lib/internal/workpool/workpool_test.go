package workpool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countTask counts how often each part runs; nest > 0 runs a nested Run
// inside every part.
type countTask struct {
	runs []atomic.Int32
	nest int
}

func (c *countTask) Run(part int) {
	c.runs[part].Add(1)
	if c.nest > 0 {
		Run(c.nest, &countTask{runs: make([]atomic.Int32, c.nest)})
	}
}

func TestRunRunsEveryPartOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		parts, nest  int
		callers, rep int
	}{
		{"zero", 0, 0, 1, 1},
		{"one", 1, 0, 1, 3},
		{"two", 2, 0, 1, 200},
		{"more than workers", 9, 0, 1, 50},
		{"nested", 3, 3, 1, 50},
		{"concurrent callers", 4, 0, 4, 100},
		{"concurrent nested", 3, 2, 3, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			for range tc.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tc.rep {
						c := &countTask{runs: make([]atomic.Int32, tc.parts), nest: tc.nest}
						Run(tc.parts, c)
						for p := range c.runs {
							if n := c.runs[p].Load(); n != 1 {
								t.Errorf("part %d ran %d times, want 1", p, n)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// TestRunAfterIdle checks that a parked worker (idle past SpinWait) still
// takes parts.
func TestRunAfterIdle(t *testing.T) {
	c := &countTask{runs: make([]atomic.Int32, 2)}
	Run(2, c)
	time.Sleep(3 * SpinWait)
	c = &countTask{runs: make([]atomic.Int32, 2)}
	Run(2, c)
	if c.runs[0].Load() != 1 || c.runs[1].Load() != 1 {
		t.Fatalf("parts ran %d and %d times, want 1 and 1", c.runs[0].Load(), c.runs[1].Load())
	}
}

type nopTask struct{ sum atomic.Int64 }

func (n *nopTask) Run(part int) { n.sum.Add(int64(part)) }

func TestRunAllocatesNothing(t *testing.T) {
	task := &nopTask{}
	Run(2, task)
	if n := testing.AllocsPerRun(200, func() { Run(2, task) }); n != 0 {
		t.Fatalf("Run allocated %.1f times per call, want 0", n)
	}
}

// BenchmarkRunHandoff is the cost of one two-part call with empty parts
// (back to back: the worker is spinning) and with a pause longer than
// SpinWait between calls (the worker has parked).
func BenchmarkRunHandoff(b *testing.B) {
	task := &nopTask{}
	b.Run("spinning", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Run(2, task)
		}
	})
	b.Run("parked", func(b *testing.B) {
		b.ReportAllocs()
		var d time.Duration
		for b.Loop() {
			time.Sleep(2 * SpinWait)
			t0 := time.Now()
			Run(2, task)
			d += time.Since(t0)
		}
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "ns/call")
	})
}

func TestAdaptBudget(t *testing.T) {
	us := int64(time.Microsecond)
	for _, tc := range []struct {
		name string
		b    int64
		ok   bool
		want int64
	}{
		{"success doubles", 10 * us, true, 21 * us},
		{"success caps at SpinWait", int64(SpinWait) - us, true, int64(SpinWait)},
		{"zero recovers", 0, true, us},
		{"timeout halves", 40 * us, false, 20 * us},
		{"timeout reaches zero", 1, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a atomic.Int64
			adapt(&a, tc.b, tc.ok)
			if got := a.Load(); got != tc.want {
				t.Fatalf("adapt(%d, %v) = %d, want %d", tc.b, tc.ok, got, tc.want)
			}
		})
	}
}

// slowTask's part 1 (on a worker) outlasts the caller's spin, so that the
// caller parks and the worker must wake it; done records the part's end.
type slowTask struct {
	sleep time.Duration
	done  atomic.Bool
}

func (s *slowTask) Run(part int) {
	if part == 1 {
		time.Sleep(s.sleep)
		s.done.Store(true)
	}
}

// TestRunWaitsForParkedWorkerPart checks that Run returns only after
// every part has finished when the caller stops spinning and parks, and
// that the call's parking state is reset for the next Run that reuses it.
func TestRunWaitsForParkedWorkerPart(t *testing.T) {
	for i := range 4 {
		s := &slowTask{sleep: 2 * SpinWait}
		Run(2, s)
		if !s.done.Load() {
			t.Fatalf("round %d: Run returned before the worker's part finished", i)
		}
		c := &countTask{runs: make([]atomic.Int32, 2)}
		Run(2, c)
		if c.runs[0].Load() != 1 || c.runs[1].Load() != 1 {
			t.Fatalf("round %d: next call's parts ran %d and %d times, want 1 and 1", i, c.runs[0].Load(), c.runs[1].Load())
		}
	}
}
