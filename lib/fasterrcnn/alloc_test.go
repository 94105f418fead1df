package fasterrcnn

import (
	"runtime"
	"testing"
)

// TestTrainStepAllocationBudget checks that a steady-state training step
// (after warm-up, same batch geometry) takes its big buffers from the
// model's arena: what it still allocates on the Go heap must stay within a
// budget far below one copy of the batch's activations.
//
// At 128x128, batch 2, a step's activations are about 100 MiB; before the
// arena carried the transformed batch (and with tensor.Clone in the
// transform, and the max-pool argmax allocated per call) a step allocated
// over 5 MiB; now about 570 KiB. The budget, 1 MiB, covers the small
// per-step bookkeeping (graph records, target assignment, sampling, NMS on
// a few hundred boxes, goroutines of the parallel kernels).
func TestTrainStepAllocationBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for three steps")
	}
	const budget = 1.0 * (1 << 20)
	c := Defaults(4)
	c.MinSize, c.MaxSize = 128, 128
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	m.Train()
	step := trainStepFixture(t, m, 128, 128)
	step() // warm-up: the arena fills
	step()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const steps = 2
	for range steps {
		step()
	}
	runtime.ReadMemStats(&after)
	perStep := float64(after.TotalAlloc-before.TotalAlloc) / steps
	allocs := (after.Mallocs - before.Mallocs) / steps
	t.Logf("steady-state step: %.0f KiB, %d allocations (budget %.0f KiB)", perStep/1024, allocs, budget/1024)
	if perStep > budget {
		t.Errorf("a steady-state training step allocates %.0f KiB on the heap, budget %.0f KiB", perStep/1024, budget/1024)
	}
}
