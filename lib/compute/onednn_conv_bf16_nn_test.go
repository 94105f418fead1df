package compute_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/convref"
	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/nn"
)

// oneDNNOrSkip skips the test, naming the Debian package, when oneDNN's
// convolutions cannot be used here.
func oneDNNOrSkip(t *testing.T) {
	t.Helper()
	if _, err := compute.ConvOneDNNImpl(compute.ConvShape{N: 1, C: 1, H: 1, W: 1, K: 1, KH: 1, KW: 1, SH: 1, SW: 1, OH: 1, OW: 1}, compute.Epilogue{}); err != nil {
		if errors.Is(err, compute.ErrConvShape) {
			t.Fatal(err)
		}
		t.Skipf("oneDNN's convolutions unavailable, install libdnnl2 (apt-get install libdnnl2): %v", err)
	}
}

// oneDNNBF16Bound is the agreement demanded, in units of 2^-24 times the
// magnitude |Scale|*sum|x*w| + |Shift| + |Residual| of each output (about
// 1e-6 relative), between a bfloat16 convolution and the float64
// convolution of the bfloat16-rounded operands. Products of bfloat16
// values are exact in float32, so the two differ only by the float32
// roundings of the sum and the epilogue; those of terms of random sign do
// not add up in one direction, and both the Go GEMM and oneDNN sum blocks
// of the reduction before adding them: a few units observed (the test logs
// the largest), against about 2^15 units for an operand left unrounded.
// lib/compute's bf16SumOrderBound explains it at length.
const oneDNNBF16Bound = 16

// TestConv2dFusedOneDNNBF16 runs CPU.Conv2dFused under bfloat16 autocast
// with DETLAB_CONV=onednn (oneDNN's bfloat16 primitives) and unset (the Go
// bfloat16 GEMM), on a table of shapes (strides 1 and 2, kernels 1, 3 and
// 7, paddings, batch 2, odd channel counts) and epilogues (folded BN,
// residual, ReLU), and compares both with the float64 convolution of the
// bfloat16-rounded operands within oneDNNBF16Bound; and checks that
// oneDNN did run, with its bfloat16 weights cached for folded-BN
// convolutions under a layout name of their own.
func TestConv2dFusedOneDNNBF16(t *testing.T) {
	oneDNNOrSkip(t)
	shapes := []nn.ConvGeom{
		{N: 1, C: 3, H: 30, W: 26, K: 16, KH: 7, KW: 7, SH: 2, SW: 2, PH: 3, PW: 3},
		{N: 1, C: 32, H: 14, W: 14, K: 32, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1},
		{N: 2, C: 16, H: 13, W: 11, K: 24, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1},
		{N: 1, C: 32, H: 14, W: 14, K: 48, KH: 1, KW: 1, SH: 2, SW: 2},
		{N: 2, C: 21, H: 9, W: 7, K: 19, KH: 1, KW: 1, SH: 1, SW: 1},
		{N: 1, C: 13, H: 10, W: 9, K: 11, KH: 3, KW: 3, SH: 1, SW: 1},
		{N: 2, C: 5, H: 17, W: 19, K: 9, KH: 7, KW: 7, SH: 2, SW: 2, PH: 3, PW: 3},
	}
	eps := []struct {
		name                    string
		scale, shift, res, relu bool
	}{
		{"bias", false, true, false, false},
		{"bn-relu", true, true, false, true},
		{"bn-res-relu", true, true, true, true},
	}
	rng := rand.New(rand.NewSource(21))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	worst := map[string]float64{}
	for _, geo := range shapes {
		geo.OH = (geo.H+2*geo.PH-geo.KH)/geo.SH + 1
		geo.OW = (geo.W+2*geo.PW-geo.KW)/geo.SW + 1
		geo.Precision = nn.BFloat16
		x := fill(geo.N * geo.C * geo.H * geo.W)
		xr := make([]float32, len(x))
		compute.RoundBF16Slice(xr, x)
		for _, ec := range eps {
			t.Run(fmt.Sprintf("%dx%dx%dx%d-k%d-s%d-p%d-K%d/%s", geo.N, geo.C, geo.H, geo.W, geo.KH, geo.SH, geo.PH, geo.K, ec.name), func(t *testing.T) {
				p := nn.NewParam("w", geo.K, geo.C, geo.KH, geo.KW)
				copy(p.Value.Data(), fill(geo.K*geo.C*geo.KH*geo.KW))
				w := p.Value.Data()
				wr := make([]float32, len(w))
				compute.RoundBF16Slice(wr, w)
				var ep nn.ConvEpilogue
				if ec.scale {
					ep.Scale = fill(geo.K)
				}
				if ec.shift {
					ep.Shift = fill(geo.K)
				}
				if ec.res {
					ep.Residual = fill(geo.N * geo.K * geo.OH * geo.OW)
				}
				ep.ReLU = ec.relu
				ref, mag := refConv64(geo, xr, wr, ep)
				// The test can tell bfloat16 from float32: unrounded
				// operands miss the reference by far more than the bound.
				if u, _ := convref.WorstUnits(f32Of(first(refConv64(geo, x, w, ep))), ref, mag); u <= oneDNNBF16Bound {
					t.Fatalf("float32 operands within %v units (%v) of the bfloat16 reference", oneDNNBF16Bound, u)
				}
				// oneDNN twice: the second call takes the cached primitive
				// and, for folded BN, the cached bfloat16 weights.
				for _, mode := range []string{"go", "onednn", "onednn"} {
					restore := compute.SetConvChoice(mode)
					g := geo
					g.Weights = p.Cache()
					y := make([]float32, geo.N*geo.K*geo.OH*geo.OW)
					for i := range y {
						y[i] = float32(math.NaN())
					}
					nn.CPU{}.Conv2dFused(g, x, w, ep, y, nn.NewArena())
					s := compute.ConvShape{N: g.N, C: g.C, H: g.H, W: g.W, K: g.K, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW, OH: g.OH, OW: g.OW, BF16: true}
					kind, use := compute.ConvOneDNNWeightsKind(s, compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU})
					restore()
					if use != (mode == "onednn") {
						t.Fatalf("DETLAB_CONV=%s: oneDNN used %v", mode, use)
					}
					u, at := convref.WorstUnits(y, ref, mag)
					if u > oneDNNBF16Bound {
						impl, _ := compute.ConvOneDNNImpl(s, compute.Epilogue{})
						t.Fatalf("DETLAB_CONV=%s (%s): y[%d] = %v, want %v: %.3g units of %.3g (bound %v)", mode, impl, at, y[at], ref[at], u, mag[at]/(1<<24), oneDNNBF16Bound)
					}
					worst[mode] = max(worst[mode], u)
					if mode == "onednn" && kind != "" && ep.Scale != nil {
						if _, err := p.Cache().Get(kind, nil, func() (nn.Derived, error) { return nil, errors.New("not cached") }); err != nil {
							t.Errorf("bfloat16 oneDNN weights not cached under %q: %v", kind, err)
						}
					}
				}
			})
		}
	}
	t.Logf("largest error, units of 2^-24 * magnitude: Go bfloat16 GEMM %.3g, oneDNN %.3g (bound %v)", worst["go"], worst["onednn"], oneDNNBF16Bound)
}

// f32Of rounds v to float32.
func f32Of(v []float64) []float32 {
	r := make([]float32, len(v))
	for i, x := range v {
		r[i] = float32(x)
	}
	return r
}

// first returns its first argument.
func first(y, _ []float64) []float64 { return y }

// refConv64 is the direct convolution in float64 with ep applied and each
// output's magnitude (convref.Direct).
func refConv64(geo nn.ConvGeom, x, w []float32, ep nn.ConvEpilogue) (y, mag []float64) {
	return convref.Direct(convref.Shape{N: geo.N, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: geo.KH, KW: geo.KW,
		SH: geo.SH, SW: geo.SW, PH: geo.PH, PW: geo.PW, OH: geo.OH, OW: geo.OW},
		x, w, convref.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU})
}

// TestConv2dFusedOneDNNPrecisions checks which precisions nn's CPU
// backend gives oneDNN: under DETLAB_CONV=onednn Float32 and BFloat16,
// each leaving its reordered weights in the parameter's cache under a
// layout name of its own, never Float16 (whose result then equals the Go
// path's bit for bit); under auto BFloat16 where oneDNN picks a JIT
// bfloat16 or AMX kernel; under go neither.
func TestConv2dFusedOneDNNPrecisions(t *testing.T) {
	oneDNNOrSkip(t)
	geo := nn.ConvGeom{N: 1, C: 16, H: 9, W: 9, K: 16, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 9, OW: 9}
	rng := rand.New(rand.NewSource(3))
	x := make([]float32, geo.C*geo.H*geo.W)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	w := make([]float32, geo.K*geo.C*geo.KH*geo.KW)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	ep := nn.ConvEpilogue{Scale: make([]float32, geo.K), Shift: make([]float32, geo.K), ReLU: true}
	for i := range ep.Scale {
		ep.Scale[i], ep.Shift[i] = 1+float32(i)/16, float32(i)/32
	}
	cep := compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, ReLU: true}
	// run convolves on a fresh parameter and reports whether oneDNN's
	// prepared weights for the call's layout are in its cache afterwards
	// (Conv2dFused's sign that oneDNN ran it).
	run := func(mode string, prec nn.Precision) (y []float32, ran bool) {
		restore := compute.SetConvChoice(mode)
		defer restore()
		p := nn.NewParam("w", geo.K, geo.C, geo.KH, geo.KW)
		copy(p.Value.Data(), w)
		g := geo
		g.Precision, g.Weights = prec, p.Cache()
		y = make([]float32, geo.K*geo.OH*geo.OW)
		nn.CPU{}.Conv2dFused(g, x, p.Value.Data(), ep, y, nn.NewArena())
		for _, bf16 := range []bool{false, true} {
			s := compute.ConvShape{N: 1, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: geo.OH, OW: geo.OW, BF16: bf16}
			restoreF := compute.SetConvChoice("onednn")
			kind, _ := compute.ConvOneDNNWeightsKind(s, cep)
			restoreF()
			if kind == "" {
				t.Fatalf("oneDNN reads plain weights for %+v: the test cannot see whether it ran", s)
			}
			if _, err := p.Cache().Get(kind, nil, func() (nn.Derived, error) { return nil, errors.New("absent") }); err == nil {
				if bf16 != (prec == nn.BFloat16) {
					t.Errorf("%s, %v: oneDNN weights of the other precision (bf16 %v) cached", mode, prec, bf16)
				}
				ran = true
			}
		}
		return y, ran
	}
	impl, err := compute.ConvOneDNNImpl(compute.ConvShape{N: 1, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: geo.OH, OW: geo.OW, BF16: true}, compute.Epilogue{})
	if err != nil {
		t.Fatal(err)
	}
	autoBF16 := !strings.HasPrefix(impl, "ref") && !strings.Contains(impl, "gemm") && (strings.Contains(impl, "bf16") || strings.Contains(impl, "amx"))
	if compute.HasBF16() && !autoBF16 {
		t.Errorf("AVX512_BF16 CPU, but oneDNN picks %q for a bfloat16 convolution", impl)
	}
	for _, c := range []struct {
		mode string
		prec nn.Precision
		want bool
	}{
		{"onednn", nn.Float32, true}, {"onednn", nn.BFloat16, true}, {"onednn", nn.Float16, false},
		{"auto", nn.BFloat16, autoBF16}, {"go", nn.BFloat16, false}, {"go", nn.Float32, false},
	} {
		if _, ran := run(c.mode, c.prec); ran != c.want {
			t.Errorf("DETLAB_CONV=%s, %v (%s): oneDNN ran %v, want %v", c.mode, c.prec, impl, ran, c.want)
		}
	}
	goY, _ := run("go", nn.Float16)
	dnY, _ := run("onednn", nn.Float16)
	for i := range goY {
		if math.Float32bits(goY[i]) != math.Float32bits(dnY[i]) {
			t.Fatalf("Float16 under DETLAB_CONV=onednn: y[%d] = %v, Go path %v", i, dnY[i], goY[i])
		}
	}
}
