package hostcheck

import (
	"fmt"
	"math"
	mrand "math/rand"
	"math/rand/v2"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// recorder is nn.CPU that keeps what lib/nn hands it: the output gradient
// of the last Conv2dBackward (the fused ConvBN's masked, scaled dc) and the
// product of the last Gemm with beta 0 (Linear's forward before its bias).
type recorder struct {
	nn.CPU
	dc, product []float32
}

func (r *recorder) Conv2dBackward(geo nn.ConvGeom, x, w, dy, dx, dw, db []float32, s nn.Scratch) {
	r.dc = append([]float32(nil), dy...)
	r.CPU.Conv2dBackward(geo, x, w, dy, dx, dw, db, s)
}

func (r *recorder) Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	r.CPU.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	if beta == 0 {
		r.product = append([]float32(nil), c[:m*ldc]...)
	}
}

// salted returns n normal values salted with NaN, infinities, zeros of
// both signs and large values.
func salted(rng *rand.Rand, n int) []float32 {
	v := randn(rng, n)
	s := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0,
		float32(math.Copysign(0, -1)), 3e38, -3e38}
	for i := range v {
		if rng.IntN(5) == 0 {
			v[i] = s[rng.IntN(len(s))]
		}
	}
	return v
}

// TestConvBNBackward compares detlab_convbn_backward with lib/nn's fused
// ConvBN backward bit for bit, -0 and NaN included: lib/nn runs ConvBN
// (frozen BatchNorm, Eps 0 and unit variance so that its scale is its
// gamma) forward and backward on nn.CPU for loss sum(y*w), so that its
// output gradient is w, which holds NaN, infinities and zeros of both
// signs; the kernel gets that y, w and scale, and its dc must equal what
// lib/nn passed to Conv2dBackward, its residual gradient lib/nn's. Every
// combination of residual and ReLU runs.
func TestConvBNBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	j := 0
	for name, geo := range convGeoms(rng, 2) {
		if geo.KH != geo.KW || geo.SH != geo.SW || geo.PH != geo.PW {
			continue // NewConv2d's kernels, strides and paddings are square
		}
		geo.N = 2
		for mask := range 4 {
			j++
			residual, relu := mask&1 != 0, mask&2 != 0
			crng := rand.New(rand.NewPCG(uint64(j), 7))
			conv, err := nn.NewConv2d("conv", geo.C, 1+crng.IntN(6), geo.KH, geo.SH, geo.PH, false, mrand.New(mrand.NewSource(1)))
			if err != nil {
				t.Fatal(err)
			}
			k := conv.OutC
			copy(conv.Weight.Value.Data(), randn(crng, conv.Weight.Value.Len()))
			bn, err := nn.NewBatchNorm2d("bn", k)
			if err != nil {
				t.Fatal(err)
			}
			bn.SetMode(nn.BNFrozen)
			bn.Eps = 0
			scale := salted(crng, k)
			scale[0] = -1.5
			copy(bn.Weight.Value.Data(), scale)
			copy(bn.Bias.Value.Data(), randn(crng, k))
			rec := &recorder{}
			g := nn.NewGraph().WithBackend(rec)
			x := g.Leaf(tensor.MustFromSlice(randn(crng, geo.N*geo.C*geo.H*geo.W), geo.N, geo.C, geo.H, geo.W), true)
			out := []int{geo.N, k, geo.OH, geo.OW}
			total := tensor.Numel(out)
			var res *nn.Var
			if residual {
				res = g.Leaf(tensor.MustFromSlice(salted(crng, total), out...), true)
			}
			y, err := nn.ConvBN(g, conv, bn, x, res, relu)
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(y.Shape(), out) {
				t.Fatalf("%s: ConvBN output %v, want %v", name, y.Shape(), out)
			}
			// lib/nn accumulates the output gradient into a zeroed
			// tensor, which turns a -0 into +0: the kernel must see the
			// same dy, so dy has none (dc's -0s come from +0 times a
			// negative scale, and the NULL-dc case below has -0s).
			dy := salted(crng, total)
			for i, v := range dy {
				if v == 0 {
					dy[i] = 0
				}
			}
			p, err := nn.Mul(g, y, g.Input(tensor.MustFromSlice(dy, out...)))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Backward(nn.Sum(g, p)); err != nil {
				t.Fatal(err)
			}
			var dres []float32
			if residual {
				dres = make([]float32, total)
			}
			r := int64(0)
			if relu {
				r = 1
			}
			grid, block := smallGrid(rng, total)
			got := launch(t, "detlab_convbn_backward", grid, block, []int64{int64(geo.N), int64(k), int64(geo.OH * geo.OW), r},
				f32b(dy), f32b(y.Value.Data()), f32b(scale), f32b(make([]float32, total)), f32b(dres))
			what := fmt.Sprintf("%s K=%d residual=%v relu=%v", name, k, residual, relu)
			checkBits(t, what+" dc", bf32(t, got[3]), rec.dc)
			if residual {
				checkBits(t, what+" dres", bf32(t, got[4]), res.Grad.Data())
			}
			g.Release()
		}
	}
	// NULL dc: only the residual gradient is written, where the mask is
	// open (a -0 gradient there stays -0 where it is closed, and -0 + -0
	// is -0 where it is open).
	nz := float32(math.Copysign(0, -1))
	dy, y, dres := []float32{1, -2, 3, nz, nz}, []float32{1, 0, -1, 2, -2}, []float32{0.5, 0.5, 0.5, nz, nz}
	got := launch(t, "detlab_convbn_backward", 1, 32, []int64{1, 1, 5, 1}, f32b(dy), f32b(y), f32b([]float32{2}), nil, f32b(dres))
	checkBits(t, "NULL dc", bf32(t, got[4]), []float32{1.5, 0.5, 0.5, nz, nz})
	// NULL dres, no ReLU: dc = dy*scale, -0 and NaN included.
	dy = []float32{nz, 0, float32(math.NaN()), 2}
	got = launch(t, "detlab_convbn_backward", 1, 32, []int64{1, 2, 2, 0}, f32b(dy), f32b(make([]float32, 4)),
		f32b([]float32{3, -1}), f32b(make([]float32, 4)), nil)
	checkBits(t, "NULL dres", bf32(t, got[3]), []float32{nz, 0, float32(math.NaN()), -2})
}

// TestLinearBias compares detlab_bias_add and detlab_bias_grad with lib/nn's
// Linear on nn.CPU bit for bit: the forward's bias add on the product lib/nn
// computed, and the bias gradient of loss sum(y*w) (a float64 sum per
// column in row order) for w holding NaN, infinities, huge values and
// zeros of both signs.
func TestLinearBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, sz := range [][3]int{{1, 3, 5}, {7, 4, 33}, {300, 5, 70}, {2, 1, 1}} {
		rows, in, cols := sz[0], sz[1], sz[2]
		lin, err := nn.NewLinear("fc", in, cols, true, mrand.New(mrand.NewSource(2)))
		if err != nil {
			t.Fatal(err)
		}
		copy(lin.Weight.Value.Data(), randn(rng, in*cols))
		copy(lin.Bias.Value.Data(), salted(rng, cols))
		rec := &recorder{}
		g := nn.NewGraph().WithBackend(rec)
		y, err := lin.Forward(g, g.Leaf(tensor.MustFromSlice(randn(rng, rows*in), rows, in), true))
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("Linear rows=%d cols=%d", rows, cols)
		grid, block := smallGrid(rng, rows*cols)
		got := launch(t, "detlab_bias_add", grid, block, []int64{int64(rows), int64(cols), 1}, f32b(rec.product), f32b(lin.Bias.Value.Data()))
		checkBits(t, what+" bias add", bf32(t, got[0]), y.Value.Data())

		dy := salted(rng, rows*cols)
		for i := range dy {
			if rng.IntN(7) == 0 {
				dy[i] *= 1e30 // sums that cancel and overflow float32 but not float64
			}
		}
		p, err := nn.Mul(g, y, g.Input(tensor.MustFromSlice(dy, rows, cols)))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Backward(nn.Sum(g, p)); err != nil {
			t.Fatal(err)
		}
		grid, block = smallGrid(rng, cols)
		got = launch(t, "detlab_bias_grad", grid, block, []int64{int64(rows), int64(cols)}, f32b(dy), f32b(make([]float32, cols)))
		checkBits(t, what+" bias grad", bf32(t, got[1]), lin.Bias.Grad.Data())
		g.Release()
	}
}
