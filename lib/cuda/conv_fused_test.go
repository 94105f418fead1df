package cuda_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// fusedCase is one convolution of the fused-epilogue checks.
type fusedCase struct {
	n, c, h, w, k, kernel, stride, pad int
}

func (fc fusedCase) geom(p nn.Precision) nn.ConvGeom {
	oh := (fc.h+2*fc.pad-fc.kernel)/fc.stride + 1
	ow := (fc.w+2*fc.pad-fc.kernel)/fc.stride + 1
	return nn.ConvGeom{N: fc.n, C: fc.c, H: fc.h, W: fc.w, K: fc.k, KH: fc.kernel, KW: fc.kernel,
		SH: fc.stride, SW: fc.stride, PH: fc.pad, PW: fc.pad, OH: oh, OW: ow, Precision: p}
}

var fusedCases = []fusedCase{
	{1, 3, 9, 11, 5, 3, 1, 1},
	{2, 4, 8, 8, 13, 3, 2, 1},   // strided, batch 2
	{2, 7, 6, 5, 16, 1, 1, 0},   // pointwise
	{3, 5, 9, 7, 12, 1, 2, 0},   // strided 1x1 (downsample)
	{1, 3, 15, 13, 24, 7, 2, 3}, // the stem's shape
}

// epVariant picks which parts of a ConvEpilogue a check gives.
type epVariant struct {
	name                    string
	scale, shift, res, relu bool
}

var epVariants = []epVariant{
	{"scale+shift+res+relu", true, true, true, true},
	{"scale+shift+relu", true, true, false, true},
	{"scale+shift", true, true, false, false},
	{"res only", false, false, true, false},
	{"shift+res+relu", false, true, true, true},
}

// fusedBitsEqual reports the first element where got and want differ in bits
// (NaN payloads aside: any NaN matches any NaN), or "".
func fusedBitsEqual(got, want []float32) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d values, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if (g != g && w != w) || math.Float32bits(g) == math.Float32bits(w) {
			continue
		}
		return fmt.Sprintf("[%d] = %v (%#08x), want %v (%#08x)", i, g, math.Float32bits(g), w, math.Float32bits(w))
	}
	return ""
}

// fusedBackendChecks runs b.Conv2dFused on every case, precision and
// epilogue variant, with operands in Go and in b's managed memory, and
// compares it bit for bit with what ConvBN runs on a backend without
// Conv2dFused (lib/nn's applyConvEpilogue on b): b.Conv2d, then
// b.ChannelAffine with ones and zeros for a missing scale and shift, then
// b.Add for the residual. The epilogue's operands hold NaN, infinities,
// -0, zero and negative scales, and one case's input is zero so that the
// products are zeros that a negative scale and a -0 shift turn into -0.
func fusedBackendChecks(t *testing.T, b *cuda.Backend) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	negZero := float32(math.Copysign(0, -1))
	for ci, fc := range fusedCases {
		for _, p := range []nn.Precision{nn.Float32, nn.BFloat16, nn.Float16} {
			geo := fc.geom(p)
			ohw, out := geo.OH*geo.OW, geo.N*geo.K*geo.OH*geo.OW
			x := randn(rng, geo.N*geo.C*geo.H*geo.W)
			if ci == 0 {
				clear(x)
			}
			w := randn(rng, geo.K*geo.C*geo.KH*geo.KW)
			scale, shift, res := randn(rng, geo.K), randn(rng, geo.K), randn(rng, out)
			scale[0], shift[0] = -1, negZero
			if geo.K > 2 {
				scale[1], shift[2] = 0, float32(math.Inf(1))
			}
			res[0], res[1], res[out-1] = float32(math.NaN()), negZero, float32(math.Inf(-1))
			for _, v := range epVariants {
				for _, managed := range []bool{false, true} {
					buf := func(s []float32) []float32 {
						if !managed || s == nil {
							return append([]float32(nil), s...)
						}
						m := b.Alloc(len(s))
						copy(m, s)
						return m
					}
					var ep nn.ConvEpilogue
					ones, zeros := make([]float32, geo.K), make([]float32, geo.K)
					for i := range ones {
						ones[i] = 1
					}
					sc, sh := ones, zeros
					if v.scale {
						ep.Scale, sc = buf(scale), scale
					}
					if v.shift {
						ep.Shift, sh = buf(shift), shift
					}
					if v.res {
						ep.Residual = buf(res)
					}
					ep.ReLU = v.relu
					xs, ws := buf(x), buf(w)
					got := buf(make([]float32, out))
					for i := range got {
						got[i] = 12345 // overwritten
					}
					b.Conv2dFused(geo, xs, ws, ep, got, nil)
					want := buf(make([]float32, out))
					b.Conv2d(geo, xs, ws, nil, want, nil)
					b.ChannelAffine(want, want, geo.N, geo.K, ohw, sc, sh, v.relu && !v.res)
					if v.res {
						b.Add(want, ep.Residual, want, v.relu)
					}
					syncT(t, b)
					if msg := fusedBitsEqual(got, want); msg != "" {
						t.Errorf("case %d %v %s managed=%v: Conv2dFused%s (Conv2d, ChannelAffine, Add)", ci, p, v.name, managed, msg)
					}
				}
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// convBNGraphChecks runs lib/nn's ConvBN with a frozen BatchNorm (the
// fused path, in training as in torchvision's Faster R-CNN body) forward
// and backward on graphs over b (activations in b's managed arena) and
// over nn.CPU, in float32 and in a bfloat16 autocast region, and compares
// the output and the gradients of x, the weights, the bias and the
// residual (the CPU folds the scale into its weights, so the two differ
// by float32 rounding order: opTol, widened for bfloat16 where one
// rounding of an operand can land on the other side of a bfloat16 step).
func convBNGraphChecks(t *testing.T, b *cuda.Backend) {
	t.Helper()
	arena := nn.NewArenaWith(b.Alloc)
	for ci, fc := range fusedCases {
		for _, p := range []nn.Precision{nn.Float32, nn.BFloat16} {
			for _, v := range []struct{ bias, res, relu bool }{{false, false, true}, {true, true, true}, {false, true, false}} {
				run := func(be nn.Backend, ar *nn.Arena) [][]float32 {
					rng := rand.New(rand.NewSource(int64(ci)))
					conv, err := nn.NewConv2d("conv", fc.c, fc.k, fc.kernel, fc.stride, fc.pad, v.bias, rng)
					if err != nil {
						t.Fatal(err)
					}
					bn, err := nn.NewBatchNorm2d("bn", fc.k)
					if err != nil {
						t.Fatal(err)
					}
					for i := range fc.k {
						bn.Weight.Value.Data()[i] = float32(0.5 + rng.Float64())
						bn.Bias.Value.Data()[i] = float32(rng.NormFloat64())
						bn.RunningMean.Data()[i] = float32(rng.NormFloat64())
						bn.RunningVar.Data()[i] = float32(0.2 + rng.Float64())
					}
					bn.SetMode(nn.BNFrozen)
					geo := fc.geom(nn.Float32)
					x := tensor.MustFromSlice(randn(rng, fc.n*fc.c*fc.h*fc.w), fc.n, fc.c, fc.h, fc.w)
					res := tensor.MustFromSlice(randn(rng, fc.n*fc.k*geo.OH*geo.OW), fc.n, fc.k, geo.OH, geo.OW)
					r := tensor.MustFromSlice(randn(rng, len(res.Data())), res.Shape()...)
					g := nn.NewGraph().WithBackend(be).WithArena(ar).WithAutocast(p)
					defer g.Release()
					xv := g.Leaf(x, true)
					var rv *nn.Var
					if v.res {
						rv = g.Leaf(res, true)
					}
					y, err := nn.ConvBN(g, conv, bn, xv, rv, v.relu)
					if err != nil {
						t.Fatal(err)
					}
					l, err := nn.Mul(g, y, g.Input(r))
					if err != nil {
						t.Fatal(err)
					}
					if err := g.Backward(nn.Sum(g, l)); err != nil {
						t.Fatal(err)
					}
					syncT(t, be)
					outs := [][]float32{append([]float32(nil), y.Value.Data()...), append([]float32(nil), xv.Grad.Data()...),
						append([]float32(nil), conv.Weight.Grad.Data()...)}
					if v.bias {
						outs = append(outs, append([]float32(nil), conv.Bias.Grad.Data()...))
					}
					if v.res {
						outs = append(outs, append([]float32(nil), rv.Grad.Data()...))
					}
					return outs
				}
				want := run(nn.CPU{}, nil)
				got := run(b, arena)
				for i := range want {
					tol := opTol(want[i])
					if p != nn.Float32 {
						tol = golden.Tol{Atol: 2e-2*maxAbs(want[i]) + 1e-4, RelL2: 1e-2}
					}
					if msg := compareNaN(got[i], want[i], tol); msg != "" {
						t.Errorf("ConvBN case %d %v %+v: result %d (0: y, 1: dx, 2: dw, then db, dres): %s", ci, p, v, i, msg)
					}
				}
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestConv2dFusedOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	fusedBackendChecks(t, b)
}

func TestConvBNGraphOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	convBNGraphChecks(t, b)
}

// TestGPUConv2dFused: the fused epilogue on the device, bit for bit
// against the separate kernels, and ConvBN graphs against nn.CPU.
func TestGPUConv2dFused(t *testing.T) {
	b := gpu(t)
	fusedBackendChecks(t, b)
	convBNGraphChecks(t, b)
}

// TestConv2dFusedBadInput: operands shorter than the geometry (or a scale,
// shift or residual shorter than the output needs) panic with an
// *OpError naming the operand, before any device work.
func TestConv2dFusedBadInput(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	geo := fusedCases[0].geom(nn.Float32)
	out := geo.N * geo.K * geo.OH * geo.OW
	x, w, y := make([]float32, geo.N*geo.C*geo.H*geo.W), make([]float32, geo.K*geo.C*geo.KH*geo.KW), make([]float32, out)
	for _, tc := range []struct {
		what string
		x, w []float32
		ep   nn.ConvEpilogue
		y    []float32
	}{
		{"x", x[1:], w, nn.ConvEpilogue{}, y},
		{"w", x, w[1:], nn.ConvEpilogue{}, y},
		{"y", x, w, nn.ConvEpilogue{}, y[1:]},
		{"scale", x, w, nn.ConvEpilogue{Scale: make([]float32, geo.K-1)}, y},
		{"shift", x, w, nn.ConvEpilogue{Shift: make([]float32, geo.K-1)}, y},
		{"residual", x, w, nn.ConvEpilogue{Residual: make([]float32, out-1)}, y},
	} {
		func() {
			defer func() {
				r := recover()
				var oe *cuda.OpError
				err, _ := r.(error)
				if r == nil || !errors.As(err, &oe) || oe.Op != "Conv2dFused" || !strings.Contains(err.Error(), tc.what) {
					t.Errorf("short %s: panic %v, want an *OpError for Conv2dFused naming %s", tc.what, r, tc.what)
				}
			}()
			b.Conv2dFused(geo, tc.x, tc.w, tc.ep, tc.y, nil)
		}()
	}
}

// TestGPUZero: Backend.Zero clears exactly the managed range it is given
// on the device (large enough for the memset to take several blocks), and
// NewTensor on a graph over the backend's arena returns zeros after an
// earlier graph dirtied the same recycled buffer.
func TestGPUZero(t *testing.T) {
	b := gpu(t)
	const n = 3_000_001
	m := b.Alloc(n)
	defer b.Free(m)
	for i := range m {
		m[i] = float32(i%7) + 1
	}
	b.Zero(m[3 : n-3])
	syncT(t, b) // the memset is queued
	for i, v := range m {
		if inside := i >= 3 && i < n-3; (inside && math.Float32bits(v) != 0) || (!inside && v != float32(i%7)+1) {
			t.Fatalf("after Zero(m[3:n-3]) m[%d] = %v", i, v)
		}
	}
	arena := nn.NewArenaWith(b.Alloc)
	for step := range 3 {
		g := nn.NewGraph().WithBackend(b).WithArena(arena)
		d := g.NewTensor(2, 64, 100, 100).Data()
		for i, v := range d {
			if math.Float32bits(v) != 0 {
				t.Fatalf("step %d: NewTensor element %d = %v", step, i, v)
			}
			d[i] = float32(step + 1)
		}
		g.Release()
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}
