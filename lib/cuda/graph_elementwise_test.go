package cuda_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// graphElementwiseChecks runs lib/nn's ReLU, Add and AddReLU forward and
// backward on graphs over b (activations in Go memory and in b's managed
// memory) and on nn.CPU: b must get the work as kernel launches (nn asks
// for nn.ElementwiseBackend) and every value and gradient must be
// bit-identical to the CPU's (the kernels add with round-to-nearest and
// share the host's ReLU, -0 and NaN included).
func graphElementwiseChecks(t *testing.T, b *cuda.Backend, n int) {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(n)))
	special := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0, float32(math.Inf(1)),
		float32(math.Inf(-1)), -2, 3, 1e-40, -1e-40}
	input := func() *tensor.Tensor {
		x := tensor.MustFromSlice(randn(rng, n), n)
		copy(x.Data(), special)
		return x
	}
	x, y, w := input(), input(), tensor.MustFromSlice(randn(rng, n), n)
	ops := []struct {
		name string
		f    func(g *nn.Graph, a, c *nn.Var) (*nn.Var, error)
	}{
		{"ReLU", func(g *nn.Graph, a, _ *nn.Var) (*nn.Var, error) { return nn.ReLU(g, a), nil }},
		{"Add", nn.Add},
		{"AddReLU", nn.AddReLU},
		{"AddReLU(x, x)", func(g *nn.Graph, a, _ *nn.Var) (*nn.Var, error) { return nn.AddReLU(g, a, a) }},
	}
	run := func(be nn.Backend, arena *nn.Arena, f func(g *nn.Graph, a, c *nn.Var) (*nn.Var, error)) [][]float32 {
		g := nn.NewGraph().WithBackend(be).WithArena(arena)
		defer g.Release()
		a, c := g.Leaf(x.Clone(), true), g.Leaf(y.Clone(), true)
		v, err := f(g, a, c)
		if err != nil {
			t.Fatal(err)
		}
		p, err := nn.Mul(g, v, g.Input(w))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Backward(nn.Sum(g, p)); err != nil {
			t.Fatal(err)
		}
		syncT(t, be)
		out := [][]float32{append([]float32(nil), v.Value.Data()...)}
		for _, in := range []*nn.Var{a, c} {
			if in.Grad != nil {
				out = append(out, append([]float32(nil), in.Grad.Data()...))
			}
		}
		return out
	}
	for _, mem := range []struct {
		name  string
		arena *nn.Arena
	}{{"go", nil}, {"managed", nn.NewArenaWith(b.Alloc)}} {
		for _, op := range ops {
			want := run(nn.CPU{}, nil, op.f)
			before := b.Stats()
			got := run(b, mem.arena, op.f)
			if after := b.Stats(); after.Launches < before.Launches+2 {
				t.Errorf("%s [%s memory, n=%d]: %d kernel launches for forward and backward, want at least 2",
					op.name, mem.name, n, after.Launches-before.Launches)
			}
			for i := range want {
				if len(got[i]) != len(want[i]) {
					t.Fatalf("%s [%s memory, n=%d]: result %d has %d values, want %d", op.name, mem.name, n, i, len(got[i]), len(want[i]))
				}
				for j := range want[i] {
					if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
						t.Errorf("%s [%s memory, n=%d]: result %d (0: value, then the input gradients) at %d: %v, CPU %v",
							op.name, mem.name, n, i, j, got[i][j], want[i][j])
						break
					}
				}
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestGraphElementwiseOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	for _, n := range []int{9, 1000} {
		graphElementwiseChecks(t, b, n)
	}
}

// TestGPUGraphElementwise: the same checks on the GPU, up to sizes past
// one launch's 65535 blocks.
func TestGPUGraphElementwise(t *testing.T) {
	b := gpu(t)
	for _, n := range []int{9, 1000, 20_000_003} {
		graphElementwiseChecks(t, b, n)
	}
}
