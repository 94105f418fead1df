package nn

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/convref"
	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/tensor"
)

// convRef64 is the direct convolution in float64 with ep applied (the
// reference every algorithm is measured against).
func convRef64(geo ConvGeom, x, w []float32, ep ConvEpilogue) []float64 {
	y, _ := convref.Direct(convref.Shape{N: geo.N, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: geo.KH, KW: geo.KW,
		SH: geo.SH, SW: geo.SW, PH: geo.PH, PW: geo.PW, OH: geo.OH, OW: geo.OW},
		x, w, convref.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU})
	return y
}

// errStats returns the largest |got-ref| and the relative L2 error.
func errStats(got []float32, ref []float64) (maxAbs, relL2 float64) {
	var num, den float64
	for i, r := range ref {
		d := float64(got[i]) - r
		maxAbs = max(maxAbs, math.Abs(d))
		num += d * d
		den += r * r
	}
	return maxAbs, math.Sqrt(num / max(den, 1e-300))
}

// wgCase is a 3x3 stride-1 pad-1 convolution with an epilogue.
type wgCase struct {
	n, c, h, w, k           int
	scale, shift, res, relu bool
}

func (tc wgCase) build(seed int64) (geo ConvGeom, p *Param, x []float32, ep ConvEpilogue) {
	rng := rand.New(rand.NewSource(seed))
	geo = ConvGeom{N: tc.n, C: tc.c, H: tc.h, W: tc.w, K: tc.k, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: tc.h, OW: tc.w}
	p = NewParam("w", tc.k, tc.c, 3, 3)
	KaimingNormal(p.Value, tc.k*9, rng)
	geo.Weights = p.Cache()
	geo.forwardOnly = true
	x = activations(rng, tc.n, tc.c, tc.h, tc.w)
	ep = randEpilogue(rng, tc.k, []int{tc.n, tc.k, tc.h, tc.w}, tc.scale, tc.shift, tc.res, tc.relu)
	return geo, p, x, ep
}

// activations returns post-ReLU-like values of the given shape:
// non-negative, mean about 0.5.
func activations(rng *rand.Rand, shape ...int) []float32 {
	x := tensor.New(shape...).Data()
	for i := range x {
		x[i] = float32(math.Max(0, rng.NormFloat64()+0.3))
	}
	return x
}

// randEpilogue returns a ConvEpilogue for k output channels with the
// parts asked for: a BatchNorm-like positive scale, a shift, a residual of
// shape out and ReLU.
func randEpilogue(rng *rand.Rand, k int, out []int, scale, shift, res, relu bool) ConvEpilogue {
	var ep ConvEpilogue
	if scale {
		ep.Scale = randTensor(rng, 0, k).Data()
		for i := range ep.Scale {
			ep.Scale[i] = 0.3 + float32(math.Abs(float64(ep.Scale[i])))
		}
	}
	if shift {
		ep.Shift = randTensor(rng, 0, k).Data()
	}
	if res {
		ep.Residual = randTensor(rng, 0, out...).Data()
	}
	ep.ReLU = relu
	return ep
}

var wgCases = []wgCase{
	{1, 16, 8, 8, 16, false, false, false, false},
	{1, 16, 7, 9, 32, true, true, false, true},     // partial tiles both ways
	{2, 32, 13, 6, 16, true, true, true, true},     // batch 2, residual
	{1, 48, 2, 2, 16, false, true, true, false},    // one tile, mostly padding
	{3, 16, 11, 5, 48, true, false, false, true},   // odd sizes
	{1, 64, 14, 14, 64, true, true, true, true},    // ResNet-like
	{2, 16, 5, 17, 16, true, true, false, false},   // wide
	{1, 32, 18, 33, 48, true, true, true, true},    // 16x16 transposes, overlapping last block
	{2, 16, 16, 16, 32, false, false, true, false}, // exactly one block, residual without ReLU
	{1, 16, 40, 44, 32, true, true, true, true},    // 110 or 440 tiles: the blocked schedule
}

// TestWinogradMatchesDirect checks both algorithms against the float64
// direct convolution, with every epilogue part, on shapes with partial
// tiles, batches and a map smaller than one tile, and against the im2col
// path's float32 error: Winograd may be a few times less accurate, not
// more. Where the AVX-512 kernels run it checks the Go loops too.
func TestWinogradMatchesDirect(t *testing.T) {
	kernels := []bool{false}
	if hasWinograd {
		kernels = append(kernels, true)
	}
	defer func(h bool) { hasWinograd = h }(hasWinograd)
	for _, tc := range wgCases {
		for _, pl := range []*winogradPlan{wgF2, wgF4} {
			for _, vec := range kernels {
				hasWinograd = vec
				t.Run(fmt.Sprintf("%v/F%d/avx512=%v", tc, pl.m, vec), func(t *testing.T) {
					testWinogradCase(t, tc, pl)
				})
			}
		}
	}
}

func testWinogradCase(t *testing.T, tc wgCase, pl *winogradPlan) {
	{
		{
			{
				geo, p, x, ep := tc.build(1)
				ref := convRef64(geo, x, p.Value.Data(), ep)
				y := make([]float32, len(ref))
				for i := range y {
					y[i] = float32(math.NaN()) // every element must be written
				}
				conv2dWinograd(pl, geo, x, p.Value.Data(), ep, y, heapScratch{})
				wgAbs, wgRel := errStats(y, ref)

				direct := make([]float32, len(ref))
				g2 := geo
				g2.forwardOnly = false
				CPU{}.Conv2dFused(g2, x, p.Value.Data(), ep, direct, heapScratch{})
				dAbs, dRel := errStats(direct, ref)
				t.Logf("max abs %.3g (im2col %.3g), rel-L2 %.3g (im2col %.3g)", wgAbs, dAbs, wgRel, dRel)
				var refMax float64
				for _, r := range ref {
					refMax = max(refMax, math.Abs(r))
				}
				// Bounds relative to the largest output, from the errors
				// measured here (F(2,3) about im2col's, F(4,3) up to 5x
				// its rel-L2 and 10x its max abs: the transforms' 4s, 5s
				// and 8s) with 3x to spare; im2col's own error (logged)
				// depends on the backend.
				relLimit, absLimit := 1e-6, 1e-6
				if pl == wgF4 {
					relLimit, absLimit = 3e-6, 1e-5
				}
				if !(wgRel <= relLimit) || !(wgAbs <= absLimit*refMax) {
					t.Errorf("error max abs %g (%.3g of max |y| %g, limit %g), rel-L2 %g (limit %g)", wgAbs, wgAbs/refMax, refMax, absLimit, wgRel, relLimit)
				}
				t.Logf("max abs / max |y| %.3g", wgAbs/refMax)
			}
		}
	}
}

// TestWinogradChosen checks which convolutions take the Winograd path.
func TestWinogradChosen(t *testing.T) {
	if !hasWinograd {
		t.Skip("no AVX-512: Winograd is never chosen")
	}
	if winogradMode != "" {
		t.Skipf("DETLAB_WINOGRAD=%s", winogradMode)
	}
	p := NewParam("w", 64, 64, 3, 3)
	base := ConvGeom{N: 1, C: 64, H: 56, W: 56, K: 64, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 56, OW: 56,
		Weights: p.Cache(), forwardOnly: true}
	cases := []struct {
		name   string
		change func(g *ConvGeom)
		want   *winogradPlan
	}{
		{"layer1", func(*ConvGeom) {}, wgF4},
		{"7x7 map", func(g *ConvGeom) { g.H, g.W, g.OH, g.OW = 7, 7, 7, 7 }, wgF2},
		{"14x14 map", func(g *ConvGeom) { g.H, g.W, g.OH, g.OW = 14, 14, 14, 14 }, wgF2},
		{"20x30 map", func(g *ConvGeom) { g.H, g.W, g.OH, g.OW = 20, 30, 20, 30 }, wgF4},
		{"10x10 map", func(g *ConvGeom) { g.H, g.W, g.OH, g.OW = 10, 10, 10, 10 }, wgF2},
		{"14x14 batch 4", func(g *ConvGeom) { g.N, g.H, g.W, g.OH, g.OW = 4, 14, 14, 14, 14 }, wgF4},
		{"7x7 batch 4", func(g *ConvGeom) { g.N, g.H, g.W, g.OH, g.OW = 4, 7, 7, 7, 7 }, wgF4},
		{"7x7 batch 2", func(g *ConvGeom) { g.N, g.H, g.W, g.OH, g.OW = 2, 7, 7, 7, 7 }, wgF2},
		{"training graph", func(g *ConvGeom) { g.forwardOnly = false }, nil},
		{"no cache", func(g *ConvGeom) { g.Weights = nil }, nil},
		{"stride 2", func(g *ConvGeom) { g.SH, g.SW, g.OH, g.OW = 2, 2, 28, 28 }, nil},
		{"1x1", func(g *ConvGeom) { g.KH, g.KW, g.PH, g.PW = 1, 1, 0, 0 }, nil},
		{"3 channels", func(g *ConvGeom) { g.C = 3 }, nil},
		{"bf16", func(g *ConvGeom) { g.Precision = BFloat16 }, nil},
	}
	for _, c := range cases {
		g := base
		c.change(&g)
		if got := winogradFor(g); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// TestWinogradNaN: a NaN input reaches every output whose window holds it
// (as torch's convolution does) and, through the tile transforms, at most
// the rest of those outputs' tiles; outputs farther away stay finite.
func TestWinogradNaN(t *testing.T) {
	for _, pl := range []*winogradPlan{wgF2, wgF4} {
		tc := wgCase{1, 16, 16, 16, 16, true, true, false, true}
		geo, p, x, ep := tc.build(2)
		const c0, h0, w0 = 3, 5, 9
		x[(c0*geo.H+h0)*geo.W+w0] = float32(math.NaN())
		y := make([]float32, geo.N*geo.K*geo.OH*geo.OW)
		conv2dWinograd(pl, geo, x, p.Value.Data(), ep, y, heapScratch{})
		for k := 0; k < geo.K; k++ {
			for oh := 0; oh < geo.OH; oh++ {
				for ow := 0; ow < geo.OW; ow++ {
					v := y[(k*geo.OH+oh)*geo.OW+ow]
					near := abs(oh-h0) <= 1 && abs(ow-w0) <= 1
					far := abs(oh-h0) > pl.m+1 || abs(ow-w0) > pl.m+1
					if near && !math.IsNaN(float64(v)) {
						t.Errorf("F%d: y[%d,%d,%d] = %v, want NaN", pl.m, k, oh, ow, v)
					}
					if far && math.IsNaN(float64(v)) {
						t.Errorf("F%d: y[%d,%d,%d] is NaN, far from the NaN input", pl.m, k, oh, ow)
					}
				}
			}
		}
	}
}

func abs(v int) int { return max(v, -v) }

// TestWinogradAllocs: with a scratch that keeps its buffers, a Winograd
// convolution allocates nothing once its weights are transformed, on both
// schedules (blocked: 56x56; phased: 14x14, whose rows are narrower than a
// 16-pixel transpose) and with a residual. It needs the Go GEMM: with
// DETLAB_BLAS=openblas or onednn, PackedB's products call the library.
func TestWinogradAllocs(t *testing.T) {
	if !hasWinograd {
		t.Skip("no AVX-512: the Go loops are not allocation-free")
	}
	if b := compute.Backend(); !strings.HasPrefix(b, "Go") {
		t.Skipf("GEMMs run on %s", b)
	}
	for _, tc := range []wgCase{{1, 64, 56, 56, 64, true, true, true, true}, {1, 32, 14, 14, 32, true, true, false, true}} {
		for _, pl := range []*winogradPlan{wgF2, wgF4} {
			geo, p, x, ep := tc.build(1)
			y := make([]float32, geo.N*geo.K*geo.OH*geo.OW)
			rs := &reuseScratch{}
			conv2dWinograd(pl, geo, x, p.Value.Data(), ep, y, rs)
			if n := testing.AllocsPerRun(5, func() { conv2dWinograd(pl, geo, x, p.Value.Data(), ep, y, rs) }); n != 0 {
				t.Errorf("%v F%d: %v allocations per call, want 0", tc, pl.m, n)
			}
		}
	}
}
