package cuda_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// backwardCase is one layer of graphBackwardChecks: a fused ConvBN
// (frozen BatchNorm) with or without a residual and a ReLU, or a Linear.
type backwardCase struct {
	name                          string
	linear                        bool
	n, c, h, w, k, kernel, stride int // ConvBN; Linear uses n (rows), c (in), k (out)
	residual, relu, convBias      bool
}

func (bc backwardCase) outShape() []int {
	if bc.linear {
		return []int{bc.n, bc.k}
	}
	pad := bc.kernel / 2
	oh := (bc.h+2*pad-bc.kernel)/bc.stride + 1
	ow := (bc.w+2*pad-bc.kernel)/bc.stride + 1
	return []int{bc.n, bc.k, oh, ow}
}

// dyadic returns n values that are small multiples of 1/4 in [-2, 2], a
// quarter of them zero: every product and sum of the checks is exact in
// float32, whatever order a GEMM sums in, so the CPU and the device must
// agree bit for bit and any difference is the epilogues'.
func dyadic(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		if rng.Intn(4) != 0 {
			v[i] = float32(rng.Intn(17)-8) / 4
		}
	}
	return v
}

// runBackwardCase builds the layer from seed, runs it forward and
// backward (loss = sum(y * w) for a dyadic w) on a graph over be with
// arena (nil: Go memory) and returns the output and every gradient.
func runBackwardCase(t *testing.T, bc backwardCase, seed int64, be nn.Backend, arena *nn.Arena) [][]float32 {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	g := nn.NewGraph().WithBackend(be).WithArena(arena)
	defer g.Release()
	out := bc.outShape()
	var params []*nn.Param
	var inputs []*nn.Var
	var y *nn.Var
	if bc.linear {
		lin, err := nn.NewLinear("fc", bc.c, bc.k, true, rng)
		if err != nil {
			t.Fatal(err)
		}
		copy(lin.Weight.Value.Data(), dyadic(rng, bc.k*bc.c))
		copy(lin.Bias.Value.Data(), dyadic(rng, bc.k))
		x := g.Leaf(tensor.MustFromSlice(dyadic(rng, bc.n*bc.c), bc.n, bc.c), true)
		if y, err = lin.Forward(g, x); err != nil {
			t.Fatal(err)
		}
		params, inputs = lin.Params(), []*nn.Var{x}
	} else {
		conv, err := nn.NewConv2d("conv", bc.c, bc.k, bc.kernel, bc.stride, bc.kernel/2, bc.convBias, rng)
		if err != nil {
			t.Fatal(err)
		}
		copy(conv.Weight.Value.Data(), dyadic(rng, conv.Weight.Value.Len()))
		if conv.Bias != nil {
			copy(conv.Bias.Value.Data(), dyadic(rng, bc.k))
		}
		bn, err := nn.NewBatchNorm2d("bn", bc.k)
		if err != nil {
			t.Fatal(err)
		}
		bn.SetMode(nn.BNFrozen)
		bn.Eps = 0 // scale = gamma / sqrt(var) exact with var in {1/4, 1, 4}
		for i := range bc.k {
			bn.Weight.Value.Data()[i] = float32(rng.Intn(9)-4) / 2
			bn.Bias.Value.Data()[i] = float32(rng.Intn(9)-4) / 4
			bn.RunningMean.Data()[i] = float32(rng.Intn(9)-4) / 4
			bn.RunningVar.Data()[i] = []float32{0.25, 1, 4}[rng.Intn(3)]
		}
		if !bn.Fusable(g) {
			t.Fatal("a frozen BatchNorm is not fusable")
		}
		x := g.Leaf(tensor.MustFromSlice(dyadic(rng, bc.n*bc.c*bc.h*bc.w), bc.n, bc.c, bc.h, bc.w), true)
		inputs = []*nn.Var{x}
		var res *nn.Var
		if bc.residual {
			res = g.Leaf(tensor.MustFromSlice(dyadic(rng, tensor.Numel(out)), out...), true)
			inputs = append(inputs, res)
		}
		if y, err = nn.ConvBN(g, conv, bn, x, res, bc.relu); err != nil {
			t.Fatal(err)
		}
		params = conv.Params()
	}
	w := g.Input(tensor.MustFromSlice(dyadic(rng, tensor.Numel(out)), out...))
	p, err := nn.Mul(g, y, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, p)); err != nil {
		t.Fatal(err)
	}
	syncT(t, be)
	res := [][]float32{append([]float32(nil), y.Value.Data()...)}
	for _, in := range inputs {
		res = append(res, append([]float32(nil), in.Grad.Data()...))
	}
	for _, p := range params {
		res = append(res, append([]float32(nil), p.Grad.Data()...))
	}
	return res
}

// graphBackwardChecks runs fused ConvBN and Linear layers forward and
// backward on graphs over b (Go and managed memory) and on nn.CPU: every
// value and gradient must be bit-identical (the ConvBN backward epilogue,
// Linear's bias add and bias gradient run on b, with the host loops'
// arithmetic), and b must get the work as kernel launches.
func graphBackwardChecks(t *testing.T, b *cuda.Backend, cases []backwardCase) {
	t.Helper()
	for ci, bc := range cases {
		seed := int64(100 + ci)
		want := runBackwardCase(t, bc, seed, nn.CPU{}, nil)
		for _, mem := range []struct {
			name  string
			arena *nn.Arena
		}{{"go", nil}, {"managed", nn.NewArenaWith(b.Alloc)}} {
			before := b.Stats()
			got := runBackwardCase(t, bc, seed, b, mem.arena)
			if after := b.Stats(); after.Launches < before.Launches+2 {
				t.Errorf("%s [%s memory]: %d kernel launches, want at least 2", bc.name, mem.name, after.Launches-before.Launches)
			}
			for i := range want {
				what := fmt.Sprintf("%s [%s memory] result %d (0: output, then input and parameter gradients)", bc.name, mem.name, i)
				if len(got[i]) != len(want[i]) {
					t.Fatalf("%s: %d values, want %d", what, len(got[i]), len(want[i]))
				}
				for j := range want[i] {
					if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
						t.Errorf("%s at %d: %v, CPU %v", what, j, got[i][j], want[i][j])
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

// backwardCases are the layers of graphBackwardChecks: every ConvBN
// epilogue variant (3x3 stride 2 and 1x1 convolutions) and Linear layers.
var backwardCases = []backwardCase{
	{name: "ConvBN", n: 2, c: 3, h: 9, w: 7, k: 5, kernel: 3, stride: 2},
	{name: "ConvBN+ReLU", n: 2, c: 4, h: 6, w: 6, k: 6, kernel: 1, stride: 1, relu: true},
	{name: "ConvBN+residual", n: 1, c: 3, h: 8, w: 5, k: 4, kernel: 3, stride: 2, residual: true},
	{name: "ConvBN+residual+ReLU+bias", n: 2, c: 5, h: 5, w: 6, k: 7, kernel: 1, stride: 1, residual: true, relu: true, convBias: true},
	{name: "Linear", linear: true, n: 7, c: 9, k: 5},
	{name: "Linear 1 row", linear: true, n: 1, c: 3, k: 300},
}

func TestGraphBackwardOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	graphBackwardChecks(t, b, backwardCases)
}

// TestGPUGraphBackward: the same checks on the GPU, with layers large
// enough for many blocks (the bias gradient's 1030 columns span five).
func TestGPUGraphBackward(t *testing.T) {
	b := gpu(t)
	cases := append([]backwardCase{
		{name: "ConvBN+residual+ReLU big", n: 2, c: 16, h: 40, w: 30, k: 64, kernel: 1, stride: 1, residual: true, relu: true},
		{name: "ConvBN 3x3 big", n: 2, c: 8, h: 33, w: 29, k: 32, kernel: 3, stride: 2, relu: true},
		{name: "Linear big", linear: true, n: 300, c: 64, k: 1030},
	}, backwardCases...)
	graphBackwardChecks(t, b, cases)
}
