package fasterrcnn

import (
	"testing"

	"github.com/detlab/detlab/internal/allocs"
	"github.com/detlab/detlab/lib/compute"
)

// TestTrainStepAllocationBudget checks that a steady-state training step
// (after warm-up, same batch geometry) takes its big buffers from the
// model's arena: what it still allocates on the Go heap must stay within a
// budget far below one copy of the batch's activations, in bytes and in
// allocations.
//
// At 128x128, batch 2, a step's activations are about 100 MiB; before the
// arena carried the transformed batch (and with tensor.Clone in the
// transform, and the max-pool argmax allocated per call) a step allocated
// over 5 MiB; then about 570 KiB. With the GEMMs' worker pool, the pooled
// kernel jobs, the graph's recycled bookkeeping and tensors and the
// samplers' scratch it allocated about 435 KiB in about 840 allocations;
// with the model keeping each image's target and sampling scratch, 337 KiB
// in 732; with the convolution and BatchNorm kernels as pooled jobs, their
// statistics, geometry, input lists and reshapes off the heap, 148 KiB in
// about 210; with lib/nn's ops recording backward structs from the
// graph's free lists instead of closures, the model keeping the proposal
// filtering's memory (rpn.ProposalScratch), its batch description and
// rescaled targets, 47-55 KiB in 55-76; with RoIAlign and the resize on
// pooled workpool tasks, the targets' encoding, the loss indices and the
// box head's inputs in scratch, and BackwardScaled giving the batch back,
// 0-1 KiB in 5-12 (the fewest of three rounds), most of them the
// runtime's (sync.Pool caches remade after a collection, wait-queue
// entries) (2026-11-30, later still).
// What remains of ours per step: the Graph, the Losses, RoIAlign's
// closure and input list, one ResNet slice. The budgets leave room for the
// runtime's share; one allocation per recorded op (about 55) or per image
// (a slice) would exceed them. Convolutions on oneDNN
// (DETLAB_CONV=onednn, auto or dnnl) are within the same budgets: their
// per-call library calls go through purego.SyscallN with reused argument
// lists (bound by reflection they took 1360 allocations, 31 KiB, a step;
// now 5-11 allocations, 0-1 KiB, as with Go's convolutions, 2026-11-30).
// GEMMs on OpenBLAS (the default where the CPU lacks AVX-512) are within
// the same budget: its sgemm_ calls allocate nothing and the patch
// matrices they take come from compute's reused buffers (they were 38 MiB
// in 42 allocations a step). GEMMs on oneDNN (DETLAB_BLAS=onednn) are too:
// they run on cached matmul primitives called through purego.SyscallN
// (dnnl_sgemm, bound by reflection, took about 1800 allocations, 60 KiB,
// a 320x320 step, and this test skipped them).
func TestTrainStepAllocationBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for eight steps")
	}
	const budget = 16 << 10 // bytes per step
	const allocBudget = 24  // heap allocations per step
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
	// The fewest of three rounds: a collection during a round makes the
	// runtime remake its pools' caches, which is not the step's doing.
	const steps = 2
	mallocs, bytes := allocs.Fewest(3, steps, step)
	perStep, perStepAllocs := float64(bytes)/steps, mallocs/steps
	t.Logf("steady-state step (GEMMs on %s): %.0f KiB, %d allocations (budgets %d KiB, %d)", compute.Backend(), perStep/1024, perStepAllocs, budget>>10, allocBudget)
	if perStep > budget {
		t.Errorf("a steady-state training step allocates %.0f KiB on the heap, budget %d KiB", perStep/1024, budget>>10)
	}
	if perStepAllocs > allocBudget {
		t.Errorf("a steady-state training step makes %d heap allocations, budget %d", perStepAllocs, allocBudget)
	}
}
