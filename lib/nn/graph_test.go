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

func TestArenaWithAllocator(t *testing.T) {
	calls := 0
	a := NewArenaWith(func(n int) []float32 { calls++; return make([]float32, n) })
	b := a.Get(16)
	if len(b) != 16 || calls != 1 {
		t.Fatalf("Get(16): len %d after %d allocator calls, want 16 after 1", len(b), calls)
	}
	a.Put(b)
	if c := a.Get(16); &c[0] != &b[0] || calls != 1 {
		t.Fatalf("Get after Put: allocator called %d times or buffer not reused", calls)
	}
	a.Get(8)
	if calls != 2 {
		t.Fatalf("a new size must come from the allocator: %d calls, want 2", calls)
	}
}
