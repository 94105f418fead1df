package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// plainBackend hides CPU's Conv2dFused: ConvBN must fall back to Conv2d
// plus a separate epilogue.
type plainBackend struct{ Backend }

type convBNCase struct {
	n, c, h, w, k           int
	kernel, stride, padding int
	bias, residual, relu    bool
}

// setup builds tc's convolution and a random BatchNorm in mode, an input,
// the residual when tc has one and a random output weighting r (the loss
// is sum(r*y)), all from seed.
func (tc convBNCase) setup(t *testing.T, seed int64, mode BNMode) (conv *Conv2d, bn *BatchNorm2d, x, res *tensor.Tensor, r []float32) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	conv, err := NewConv2d("conv", tc.c, tc.k, tc.kernel, tc.stride, tc.padding, tc.bias, rng)
	if err != nil {
		t.Fatal(err)
	}
	bn = newRandomBN(t, rng, tc.k, mode)
	x = randTensor(rng, 0, tc.n, tc.c, tc.h, tc.w)
	outShape, err := conv.OutputShape(x.Shape())
	if err != nil {
		t.Fatal(err)
	}
	if tc.residual {
		res = randTensor(rng, 0, outShape...)
	}
	return conv, bn, x, res, randTensor(rng, 0, outShape...).Data()
}

var convBNCases = []convBNCase{
	{1, 3, 9, 11, 5, 3, 1, 1, false, false, true},
	{2, 4, 8, 8, 13, 3, 2, 1, true, false, true},    // stride 2, batch 2, bias
	{2, 7, 6, 5, 16, 1, 1, 0, false, true, true},    // pointwise, residual
	{3, 5, 9, 7, 12, 1, 2, 0, false, false, false},  // strided 1x1 (downsample)
	{1, 3, 15, 13, 24, 7, 2, 3, false, false, true}, // the stem's shape
	{2, 16, 7, 7, 33, 3, 1, 1, true, true, true},    // edge tiles, residual, ReLU
	{1, 8, 5, 5, 40, 3, 1, 1, false, true, false},   // residual without ReLU
}

// newRandomBN returns a BatchNorm with random affine parameters and
// running statistics.
func newRandomBN(t *testing.T, rng *rand.Rand, c int, mode BNMode) *BatchNorm2d {
	t.Helper()
	bn, err := NewBatchNorm2d("bn", c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c {
		bn.Weight.Value.Data()[i] = float32(0.5 + rng.Float64())
		bn.Bias.Value.Data()[i] = float32(rng.NormFloat64())
		bn.RunningMean.Data()[i] = float32(rng.NormFloat64())
		bn.RunningVar.Data()[i] = float32(0.2 + rng.Float64())
	}
	bn.SetMode(mode)
	return bn
}

func maxAbsDiff(a, b []float32) (diff, scale float64) {
	for i := range a {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

// weightedSum is sum(y * r): a loss with a different gradient per element.
func weightedSum(g *Graph, y *Var, r []float32) *Var {
	out := g.NewTensor(1)
	var s float64
	for i, v := range y.Value.Data() {
		s += float64(v) * float64(r[i])
	}
	out.Data()[0] = float32(s)
	return g.Op(out, []*Var{y}, func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		d := gin[0].Data()
		for i := range d {
			d[i] += gy.Data()[0] * r[i]
		}
	})
}

// TestConvBNFusedMatchesLayers compares the fused operation (CPU fused
// store, and the fallback of a backend without Conv2dFused) with the
// separate layers, forward and, with a frozen BatchNorm on a recording
// graph, the gradients of the input, the weights, the bias and the
// residual.
func TestConvBNFusedMatchesLayers(t *testing.T) {
	for _, tc := range convBNCases {
		for _, be := range []Backend{CPU{}, plainBackend{CPU{}}} {
			for _, mode := range []BNMode{BNEval, BNFrozen} {
				name := fmt.Sprintf("%+v/%T/%v", tc, be, mode)
				t.Run(name, func(t *testing.T) {
					conv, bn, x, res, r := tc.setup(t, 7, mode)
					recording := mode == BNFrozen
					run := func(fused bool) (y, dx, dres, dw, db []float32) {
						for _, p := range conv.Params() {
							p.ZeroGrad()
						}
						g := NewInferenceGraph()
						if recording {
							g = NewGraph()
						}
						g.WithBackend(be).WithArena(NewArena())
						xv := g.Leaf(x, true)
						var rv *Var
						if res != nil {
							rv = g.Leaf(res, true)
						}
						var out *Var
						var err error
						if fused {
							if !bn.Fusable(g) {
								t.Fatal("BatchNorm not fusable")
							}
							out, err = ConvBN(g, conv, bn, xv, rv, tc.relu)
						} else {
							out, err = convBNUnfused(g, conv, bn, xv, rv, tc.relu)
						}
						if err != nil {
							t.Fatal(err)
						}
						y = append([]float32(nil), out.Value.Data()...)
						if !recording {
							return y, nil, nil, nil, nil
						}
						if err := g.Backward(weightedSum(g, out, r)); err != nil {
							t.Fatal(err)
						}
						dx = append([]float32(nil), xv.Grad.Data()...)
						if rv != nil {
							dres = append([]float32(nil), rv.Grad.Data()...)
						}
						dw = append([]float32(nil), conv.Weight.Grad.Data()...)
						if conv.Bias != nil {
							db = append([]float32(nil), conv.Bias.Grad.Data()...)
						}
						return
					}
					y1, dx1, dr1, dw1, db1 := run(true)
					y0, dx0, dr0, dw0, db0 := run(false)
					for _, c := range []struct {
						name      string
						got, want []float32
					}{{"y", y1, y0}, {"dx", dx1, dx0}, {"dresidual", dr1, dr0}, {"dw", dw1, dw0}, {"dbias", db1, db0}} {
						if len(c.got) != len(c.want) {
							t.Fatalf("%s: %d values, want %d", c.name, len(c.got), len(c.want))
						}
						d, s := maxAbsDiff(c.got, c.want)
						if d > 1e-5*(1+s) {
							t.Errorf("%s: fused differs from the layers by %g (scale %g)", c.name, d, s)
						}
					}
					if tc.relu {
						for i, v := range y1 {
							if v < 0 {
								t.Fatalf("y[%d] = %v after ReLU", i, v)
							}
						}
					}
				})
			}
		}
	}
}

func TestBatchNormFusable(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, tc := range []struct {
		mode      BNMode
		recording bool
		trainable bool
		autocast  Precision
		want      bool
	}{
		{BNEval, false, true, Float32, true},
		{BNEval, true, true, Float32, false}, // gamma and beta want gradients
		{BNEval, true, false, Float32, true},
		{BNFrozen, true, true, Float32, true},
		{BNFrozen, false, true, Float32, true},
		{BNTrain, true, true, Float32, false},
		{BNTrain, false, true, Float32, false},  // batch statistics
		{BNFrozen, false, true, BFloat16, true}, // autocast fuses too (fuse_bf16_test.go)
		{BNTrain, false, true, BFloat16, false},
	} {
		bn := newRandomBN(t, rng, 4, tc.mode)
		if tc.mode != BNFrozen {
			bn.Weight.Trainable, bn.Bias.Trainable = tc.trainable, tc.trainable
		}
		g := NewInferenceGraph()
		if tc.recording {
			g = NewGraph()
		}
		g.WithAutocast(tc.autocast)
		if got := bn.Fusable(g); got != tc.want {
			t.Errorf("%+v: Fusable = %v, want %v", tc, got, tc.want)
		}
	}
}

// TestConvBNTrainModeUnfused checks that a train-mode BatchNorm (batch
// statistics) goes through the separate layers: same output and the same
// running-statistics update as calling them.
func TestConvBNTrainModeUnfused(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	conv, err := NewConv2d("conv", 3, 6, 3, 1, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rng, 0, 2, 3, 6, 6)
	bnA := newRandomBN(t, rand.New(rand.NewSource(5)), 6, BNTrain)
	bnB := newRandomBN(t, rand.New(rand.NewSource(5)), 6, BNTrain)
	g := NewGraph()
	yA, err := ConvBN(g, conv, bnA, g.Input(x), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	h, err := conv.Forward(g, g.Input(x))
	if err != nil {
		t.Fatal(err)
	}
	yB, err := bnB.ForwardReLU(g, h)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := maxAbsDiff(yA.Value.Data(), yB.Value.Data()); d != 0 {
		t.Errorf("outputs differ by %g", d)
	}
	if d, _ := maxAbsDiff(bnA.RunningVar.Data(), bnB.RunningVar.Data()); d != 0 {
		t.Errorf("running variances differ by %g", d)
	}
}

func TestConvBNErrors(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	conv, err := NewConv2d("conv", 3, 4, 3, 1, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	bn := newRandomBN(t, rng, 4, BNEval)
	bn5 := newRandomBN(t, rng, 5, BNEval)
	g := NewInferenceGraph()
	x := g.Input(tensor.New(1, 3, 5, 5))
	for _, tc := range []struct {
		name string
		conv *Conv2d
		bn   *BatchNorm2d
		x    *Var
		res  *Var
	}{
		{"nil conv", nil, bn, x, nil},
		{"nil bn", conv, nil, x, nil},
		{"wrong input channels", conv, bn, g.Input(tensor.New(1, 2, 5, 5)), nil},
		{"bn channels", conv, bn5, x, nil},
		{"residual shape", conv, bn, x, g.Input(tensor.New(1, 4, 5, 4))},
		{"empty input", conv, bn, g.Input(tensor.New(0, 3, 5, 5)), nil},
	} {
		if _, err := ConvBN(g, tc.conv, tc.bn, tc.x, tc.res, true); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestConvBNNaNPropagates: a NaN input reaches the output through the
// fused ReLU, as through the separate layers.
func TestConvBNNaNPropagates(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	conv, err := NewConv2d("conv", 2, 24, 1, 1, 0, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	bn := newRandomBN(t, rng, 24, BNEval)
	x := randTensor(rng, 0, 1, 2, 8, 8)
	x.Data()[3] = float32(math.NaN())
	g := NewInferenceGraph()
	y, err := ConvBN(g, conv, bn, g.Input(x), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 24 {
		if v := y.Value.Data()[k*64+3]; v == v {
			t.Fatalf("channel %d: output %v, want NaN", k, v)
		}
	}
}

// TestIm2colPanels checks the patch matrix generated into packed panels
// against im2col, for strips that cross output rows, stride 2, padding,
// kernels wider than the input and panels starting mid-matrix.
func TestIm2colPanels(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, tc := range []struct{ c, h, w, k, s, p int }{
		{3, 9, 11, 3, 1, 1}, {2, 8, 8, 3, 2, 1}, {3, 15, 13, 7, 2, 3}, {4, 5, 7, 1, 2, 0},
		{2, 3, 3, 5, 1, 2}, {1, 1, 1, 3, 1, 1}, {2, 6, 5, 3, 3, 2},
	} {
		geo := ConvGeom{N: 1, C: tc.c, H: tc.h, W: tc.w, K: 1, KH: tc.k, KW: tc.k, SH: tc.s, SW: tc.s, PH: tc.p, PW: tc.p}
		geo.OH = (geo.H+2*geo.PH-geo.KH)/geo.SH + 1
		geo.OW = (geo.W+2*geo.PW-geo.KW)/geo.SW + 1
		x := randTensor(rng, 0, tc.c, tc.h, tc.w).Data()
		rows, cols := geo.C*geo.KH*geo.KW, geo.OH*geo.OW
		want := make([]float32, rows*cols)
		im2col(geo, x, want)
		src := im2colPanels{geo: geo, x: x}
		for _, nr := range []int{1, 4, 16, 32} {
			for _, blk := range [][4]int{{0, rows, 0, cols}, {1, rows - 1, 2, cols - 2}, {rows / 2, rows - rows/2, cols / 3, cols - cols/3}} {
				p0, kb, j0, nb := blk[0], blk[1], blk[2], blk[3]
				if kb <= 0 || nb <= 0 {
					continue
				}
				strips := (nb + nr - 1) / nr
				dst := make([]float32, strips*nr*kb)
				for i := range dst {
					dst[i] = float32(math.NaN())
				}
				src.PackPanel(dst, nr, p0, kb, j0, nb)
				for s := range strips {
					for p := range kb {
						for j := range nr {
							got := dst[s*nr*kb+p*nr+j]
							var w float32
							if q := s*nr + j; q < nb {
								w = want[(p0+p)*cols+j0+q]
							}
							if math.Float32bits(got) != math.Float32bits(w) {
								t.Fatalf("%+v nr=%d block %v: strip %d p %d col %d = %v, want %v", tc, nr, blk, s, p, j, got, w)
							}
						}
					}
				}
			}
		}
	}
}
