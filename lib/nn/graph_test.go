package nn

import (
	"math/rand"
	"testing"
)

// TestArenaBackwardRecyclesIntermediateGrads checks that with an arena the
// gradients of intermediate values are recycled during Backward (Grad nil
// afterwards) while leaf and parameter gradients equal those of a graph
// without an arena.
func TestArenaBackwardRecyclesIntermediateGrads(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	conv, err := NewConv2d("c", 2, 4, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	conv2, err := NewConv2d("d", 4, 2, 3, 1, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rng, 0, 2, 2, 7, 7)
	run := func(arena *Arena) (mid *Var, dx, dw []float32) {
		ZeroGrads(conv.Params())
		ZeroGrads(conv2.Params())
		g := NewGraph()
		if arena != nil {
			g.WithArena(arena)
		}
		xv := g.Leaf(x, true)
		y, err := conv.Forward(g, xv)
		if err != nil {
			t.Fatal(err)
		}
		mid = ReLU(g, y)
		z, err := conv2.Forward(g, mid)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Backward(Sum(g, square(t, g, z))); err != nil {
			t.Fatal(err)
		}
		return mid, append([]float32(nil), xv.Grad.Data()...), append([]float32(nil), conv.Weight.Grad.Data()...)
	}
	_, dx0, dw0 := run(nil)
	arena := NewArena()
	for i := 0; i < 2; i++ { // the second pass reuses recycled buffers
		mid, dx, dw := run(arena)
		if mid.Grad != nil {
			t.Error("intermediate gradient kept with an arena")
		}
		if relL2(dx, dx0) > 1e-6 || relL2(dw, dw0) > 1e-6 {
			t.Fatalf("pass %d: gradients differ from the arena-free graph: dx %.3g dw %.3g", i, relL2(dx, dx0), relL2(dw, dw0))
		}
	}
}
