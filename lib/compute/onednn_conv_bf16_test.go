package compute

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/convref"
)

// bf16Unit is float32's unit roundoff, 2^-24: the relative error of one
// float32 addition or multiplication.
const bf16Unit = 1.0 / (1 << 24)

// bf16SumOrderBound is the agreement, in units of bf16Unit times the
// magnitude convRefMag returns, that TestConvOneDNNBF16 demands between
// oneDNN's bfloat16 convolution and the float64 convolution of the
// bfloat16-rounded operands (about 1e-6 relative).
//
// Why that is the right size: a product of two bfloat16 values (8-bit
// significands) is exact in float32, so both sides see exactly the same
// terms and the only differences are the roundings of the float32
// additions that sum them (and of the epilogue's multiply and adds). Each
// addition errs by at most bf16Unit times the partial sum it produces, so
// the worst case over any order is (C*KH*KW + 3) * bf16Unit * magnitude
// (Higham's gamma_n; 579 units for a 3x3 over 64 channels): a bound that
// could not catch a wrong order of terms or a dropped one. The errors of
// independent roundings do not add up in one direction, though: for terms
// of random sign they grow like a random walk, and oneDNN sums short
// blocks of the reduction (a channel block, one kernel tap) before adding
// them up, so the observed error stays within a few units of the
// magnitude at every shape tested (the test logs the largest, in units),
// while an operand left unrounded (a float32 product) misses by about
// 2^-9 = 32768 units and a term dropped or counted twice by far more.
const bf16SumOrderBound = 16

// roundedCopy returns v rounded to bfloat16 (RoundBF16Slice).
func roundedCopy(v []float32) []float32 {
	r := make([]float32, len(v))
	RoundBF16Slice(r, v)
	return r
}

// bf16ConvShapes are the shapes the bfloat16 tests run: strides 1 and 2,
// kernels 1, 3 and 7, paddings 0 to 3, batch 2, odd channel counts.
var bf16ConvShapes = []struct {
	name string
	s    ConvShape
}{
	{"stem7x7s2", convShapeOf(1, 3, 38, 30, 16, 7, 7, 2, 2, 3, 3)},
	{"3x3s1", convShapeOf(1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1)},
	{"3x3s2odd", convShapeOf(1, 16, 15, 13, 32, 3, 3, 2, 2, 1, 1)},
	{"1x1s2", convShapeOf(1, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0)},
	{"1x1s1odd", convShapeOf(1, 37, 9, 7, 21, 1, 1, 1, 1, 0, 0)},
	{"batch2-3x3", convShapeOf(2, 24, 11, 12, 40, 3, 3, 1, 1, 1, 1)},
	{"batch2-7x7s2", convShapeOf(2, 5, 20, 17, 9, 7, 7, 2, 2, 3, 3)},
	{"oddch3x3nopad", convShapeOf(1, 13, 10, 9, 11, 3, 3, 1, 1, 0, 0)},
	{"rect3x1pad", convShapeOf(1, 5, 10, 9, 7, 3, 1, 1, 2, 2, 0)},
	{"3x3s2pad2", convShapeOf(1, 8, 9, 9, 16, 3, 3, 2, 2, 2, 2)},
}

// TestConvOneDNNBF16 compares oneDNN's bfloat16 convolution (forced,
// whatever implementation it picks) with the float64 convolution of the
// bfloat16-rounded operands, within bf16SumOrderBound, for every shape of
// bf16ConvShapes and epilogue (folded BN with residual and ReLU
// included), three times: a fresh primitive, the cached one, prepared
// weights. It also checks that the unrounded operands' convolution lies
// outside the bound (the products really are bfloat16).
func TestConvOneDNNBF16(t *testing.T) {
	e := loadedConvEngine(t)
	eps := []struct {
		name                    string
		scale, shift, res, relu bool
	}{
		{"plain", false, false, false, false},
		{"bias-relu", false, true, false, true},
		{"bn-relu", true, true, false, true},
		{"bn-res-relu", true, true, true, true},
		{"res", false, false, true, false},
	}
	rng := rand.New(rand.NewSource(11))
	worstAll := 0.0
	for _, sc := range bf16ConvShapes {
		s := sc.s
		s.BF16 = true
		x := randSlice(rng, s.N*s.C*s.H*s.W)
		w := randSlice(rng, s.K*s.C*s.KH*s.KW)
		xr, wr := roundedCopy(x), roundedCopy(w)
		for _, ec := range eps {
			t.Run(sc.name+"/"+ec.name, func(t *testing.T) {
				var ep Epilogue
				if ec.scale {
					ep.Scale = randSlice(rng, s.K)
				}
				if ec.shift {
					ep.Shift = randSlice(rng, s.K)
				}
				if ec.res {
					ep.Residual = randSlice(rng, s.N*s.K*s.OH*s.OW)
				}
				ep.ReLU = ec.relu
				want, mag := convRefMag(s, xr, wr, ep)
				if u, _ := convref.WorstUnits(convRef(s, x, w, ep), want, mag); u <= bf16SumOrderBound {
					t.Fatalf("the float32 product of the unrounded operands is within %v units (%v): the test cannot tell bfloat16 from float32", bf16SumOrderBound, u)
				}
				p, err := e.prim(convKeyOf(s, ep))
				if err != nil {
					t.Fatalf("oneDNN refuses the bfloat16 convolution: %v", err)
				}
				pw, err := e.newWeights(s, ep, w)
				if p.wKind == "" {
					pw = nil
				} else if err != nil || pw.Kind() != p.wKind {
					t.Fatalf("newWeights: %v", err)
				}
				if f32, err := e.prim(convKeyOf(sc.s, ep)); err == nil && f32.wKind != "" && f32.wKind == p.wKind {
					t.Errorf("float32 and bfloat16 weights share the layout name %q", p.wKind)
				}
				y := make([]float32, len(want))
				for pass, pw := range []*OneDNNWeights{nil, nil, pw} {
					for i := range y {
						y[i] = float32(math.NaN()) // must all be overwritten
					}
					ran, err := e.run(s, x, w, pw, ep, y, true)
					if err != nil || !ran {
						t.Fatalf("run: ran %v, err %v", ran, err)
					}
					u, at := convref.WorstUnits(y, want, mag)
					if u > bf16SumOrderBound {
						t.Fatalf("pass %d (%s): y[%d] = %v, want %v: %.3g units of %.3g (bound %v)", pass, p.impl, at, y[at], want[at], u, bf16Unit*mag[at], bf16SumOrderBound)
					}
					worstAll = max(worstAll, u)
				}
				if ep.ReLU {
					for i, v := range y {
						if v < 0 || math.Float32bits(v) == 1<<31 {
							t.Fatalf("y[%d] = %v after ReLU", i, v)
						}
					}
				}
			})
		}
		impl, _ := ConvOneDNNImpl(s, Epilogue{})
		t.Logf("%-14s %s", sc.name, impl)
	}
	t.Logf("largest error: %.3g units of 2^-24 * magnitude (bound %v)", worstAll, bf16SumOrderBound)
}

// TestConvOneDNNBF16Rounding runs a 1x1 convolution with the weight 1, so
// that each output is its input rounded to bfloat16 by oneDNN's reorder,
// and compares it bit for bit with RoundBF16Slice on ties (which go to
// even), values just either side of them, NaN, infinities, overflow to
// Inf, and random values. Subnormal inputs may flush to zero (see the
// package notes in onednn_conv_bf16.go); -0 comes out +0 (0 + -0*1).
func TestConvOneDNNBF16Rounding(t *testing.T) {
	e := loadedConvEngine(t)
	vals := []float32{
		1, -1, 0, float32(math.Copysign(0, -1)),
		math.Float32frombits(0x3f808000),  // 1 + 2^-8: a tie, even is 1
		math.Float32frombits(0x3f818000),  // 1 + 3*2^-8: a tie, even is 1 + 2^-6
		math.Float32frombits(0x3f808001),  // just above the tie: up
		math.Float32frombits(0x3f807fff),  // just below it: down
		math.Float32frombits(0xc0418000),  // negative tie
		math.MaxFloat32, -math.MaxFloat32, // round to ±Inf
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x7f7f7fff), // largest finite bfloat16 after rounding down
		1e-37, 3.14159265, -2.71828, 65504, 1 << 30,
	}
	rng := rand.New(rand.NewSource(2))
	for len(vals) < 400 {
		// Random finite normal values of every exponent.
		b := rng.Uint32()&0x807fffff | uint32(1+rng.Intn(254))<<23
		vals = append(vals, math.Float32frombits(b))
	}
	s := convShapeOf(1, 1, 20, 20, 1, 1, 1, 1, 1, 0, 0)
	s.BF16 = true
	y := make([]float32, len(vals))
	if ran, err := e.run(s, vals, []float32{1}, nil, Epilogue{}, y, true); err != nil || !ran {
		t.Fatalf("run: ran %v, err %v", ran, err)
	}
	want := roundedCopy(vals)
	for i, v := range vals {
		switch {
		case math.IsNaN(float64(want[i])):
			if !math.IsNaN(float64(y[i])) {
				t.Errorf("%v (%#08x): %v, want NaN", v, math.Float32bits(v), y[i])
			}
		case want[i] == 0:
			if y[i] != 0 {
				t.Errorf("%v: %v, want 0", v, y[i])
			}
		case math.Float32bits(y[i]) != math.Float32bits(want[i]):
			t.Errorf("%v (%#08x): %v (%#08x), want %v (%#08x)", v, math.Float32bits(v), y[i], math.Float32bits(y[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestConvOneDNNBF16Auto checks what DETLAB_CONV=auto sends to oneDNN in
// bfloat16: every epilogue, plain included, where oneDNN picks a JIT
// bfloat16 or AMX implementation (on this CPU when it has AVX512_BF16),
// and ConvOneDNNWeightsKind agreeing with ConvOneDNN.
func TestConvOneDNNBF16Auto(t *testing.T) {
	loadedConvEngine(t)
	restore := SetConvChoice("auto")
	defer restore()
	s := convShapeOf(1, 16, 10, 10, 32, 3, 3, 1, 1, 1, 1)
	s.BF16 = true
	rng := rand.New(rand.NewSource(5))
	x, w := randSlice(rng, s.N*s.C*s.H*s.W), randSlice(rng, s.K*s.C*s.KH*s.KW)
	y := make([]float32, s.N*s.K*s.OH*s.OW)
	bn := Epilogue{Scale: randSlice(rng, s.K), Shift: randSlice(rng, s.K), ReLU: true}
	impl, err := ConvOneDNNImpl(s, Epilogue{})
	if err != nil {
		t.Fatal(err)
	}
	wantRun := autoUsesBF16(impl)
	if HasBF16() && !wantRun {
		t.Errorf("AVX512_BF16 CPU, but oneDNN picked %q for a bfloat16 convolution", impl)
	}
	for _, c := range []struct {
		name string
		ep   Epilogue
	}{{"plain", Epilogue{}}, {"bias-relu", Epilogue{Shift: bn.Shift, ReLU: true}}, {"folded BN", bn}} {
		ran, err := ConvOneDNN(s, x, w, c.ep, y)
		if err != nil || ran != wantRun {
			t.Errorf("%s: ran %v, err %v; want ran %v (impl %s)", c.name, ran, err, wantRun, impl)
		}
		if kind, use := ConvOneDNNWeightsKind(s, c.ep); use != ran {
			t.Errorf("%s: ConvOneDNNWeightsKind says use %v (%q), ConvOneDNN ran %v", c.name, use, kind, ran)
		}
	}
	if !strings.Contains(ConvBackend(), "bfloat16 ones where it picks a JIT bf16 or AMX one") {
		t.Errorf("ConvBackend() = %q does not say what auto does with bfloat16", ConvBackend())
	}
	s8 := convShapeOf(1, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1)
	s8.BF16 = true
	if impl8, err := ConvOneDNNImpl(s8, Epilogue{}); err != nil || !strings.Contains(ConvBackend(), "(bfloat16 3x3: "+impl8+")") {
		t.Errorf("ConvBackend() = %q does not name the bfloat16 kernel %q (%v)", ConvBackend(), impl8, err)
	}
}

// TestConvOneDNNBF16Unset checks what oneDNN takes with DETLAB_CONV
// unset: bfloat16 inference convolutions with an even channel count
// where it picks a JIT bfloat16 or AMX kernel, nothing else (training's,
// odd channel counts, float32), and that ConvBackend names the kernel.
func TestConvOneDNNBF16Unset(t *testing.T) {
	loadedConvEngine(t)
	restore := SetConvChoice("")
	defer restore()
	rng := rand.New(rand.NewSource(6))
	even := convShapeOf(1, 16, 10, 10, 32, 3, 3, 1, 1, 1, 1)
	even.BF16 = true
	impl, err := ConvOneDNNImpl(even, Epilogue{})
	if err != nil {
		t.Fatal(err)
	}
	auto := autoUsesBF16(impl)
	odd := convShapeOf(1, 3, 16, 16, 16, 7, 7, 2, 2, 3, 3)
	odd.BF16 = true
	for _, c := range []struct {
		name      string
		s         ConvShape
		inference bool
		want      bool
	}{
		{"bf16 inference", even, true, auto},
		{"bf16 training", even, false, false},
		{"bf16 inference, 3 channels", odd, true, false},
		{"float32 inference", func() ConvShape { s := even; s.BF16 = false; return s }(), true, false},
	} {
		s := c.s
		s.Inference = c.inference
		x, w := randSlice(rng, s.N*s.C*s.H*s.W), randSlice(rng, s.K*s.C*s.KH*s.KW)
		y := make([]float32, s.N*s.K*s.OH*s.OW)
		ran, err := ConvOneDNN(s, x, w, Epilogue{}, y)
		if err != nil || ran != c.want {
			t.Errorf("%s: ran %v, err %v; want ran %v (impl %s)", c.name, ran, err, c.want, impl)
		}
		if _, use := ConvOneDNNWeightsKind(s, Epilogue{}); use != ran {
			t.Errorf("%s: ConvOneDNNWeightsKind says use %v, ConvOneDNN ran %v", c.name, use, ran)
		}
	}
	s8 := convShapeOf(1, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1)
	s8.BF16 = true
	if impl8, err := ConvOneDNNImpl(s8, Epilogue{}); err != nil || !strings.Contains(ConvBackend(), "bfloat16 3x3: "+impl8) {
		t.Errorf("ConvBackend() = %q does not name the bfloat16 kernel %q (%v)", ConvBackend(), impl8, err)
	}
}

// TestAutoUsesBF16 pins the implementation names auto accepts for
// bfloat16 convolutions.
func TestAutoUsesBF16(t *testing.T) {
	for impl, want := range map[string]bool{
		"brgconv:avx512_core_bf16":     true,
		"brgconv_1x1:avx512_core_bf16": true,
		"jit:avx512_core_bf16":         true,
		"brgconv:avx512_core_amx":      true,
		"brg:avx512_core_amx":          true,
		"gemm:jit":                     false,
		"jit_bf16_gemm:any":            false,
		"ref:any":                      false,
		"brgconv:avx512_core":          false, // float32 kernels (bf16 emulated by conversion)
		"jit:avx2":                     false,
	} {
		if got := autoUsesBF16(impl); got != want {
			t.Errorf("autoUsesBF16(%q) = %v, want %v", impl, got, want)
		}
	}
	if _, err := loadConvEngine(); err != nil {
		return // without oneDNN ConvOneDNNImpl reports that first
	}
	if _, err := ConvOneDNNImpl(ConvShape{BF16: true}, Epilogue{}); !errors.Is(err, ErrConvShape) {
		t.Errorf("zero bfloat16 shape: %v, want ErrConvShape", err)
	}
}

// TestConvOneDNNBF16NonFinite puts a NaN or an Inf into the first or the
// last channel of one pixel and checks that exactly the outputs whose
// window covers it, and no others, come out NaN or ±Inf as in the
// float64 convolution, for odd and even channel counts (oneDNN's odd-
// channel bfloat16 layout spread them one pixel further: see
// bf16PaddedChannels) and kernels 1, 3 and 7.
func TestConvOneDNNBF16NonFinite(t *testing.T) {
	e := loadedConvEngine(t)
	rng := rand.New(rand.NewSource(4))
	for _, k := range []int{1, 3, 7} {
		for _, c := range []int{1, 3, 4, 13, 16} {
			s := convShapeOf(2, c, 12, 11, 5, k, k, 1, 1, k/2, k/2)
			s.BF16 = true
			w := randSlice(rng, s.K*s.C*s.KH*s.KW)
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
				for _, ch := range []int{0, c - 1} {
					x := randSlice(rng, s.N*s.C*s.H*s.W)
					x[((1*s.C+ch)*s.H+6)*s.W+5] = bad // image 1, (6,5)
					want := convRef(s, roundedCopy(x), roundedCopy(w), Epilogue{})
					y := make([]float32, len(want))
					if ran, err := e.run(s, x, w, nil, Epilogue{}, y, true); err != nil || !ran {
						t.Fatalf("run: ran %v, err %v", ran, err)
					}
					for i := range want {
						wv, yv := float64(want[i]), float64(y[i])
						if math.IsNaN(wv) != math.IsNaN(yv) || math.IsInf(wv, 1) != math.IsInf(yv, 1) || math.IsInf(wv, -1) != math.IsInf(yv, -1) {
							t.Fatalf("kernel %d, %d channels, %v in channel %d: y[%d] = %v, want %v", k, c, bad, ch, i, yv, wv)
						}
					}
				}
			}
		}
	}
}

// ExampleConvShape_bfloat16 runs a 3x3 convolution with a folded BatchNorm in
// bfloat16 (torch autocast's product: operands rounded to bfloat16, float32
// accumulation and epilogue) through oneDNN when DETLAB_CONV selects it,
// and names the kernel oneDNN picks for it, e.g. brgconv:avx512_core_bf16
// on a CPU with AVX512_BF16, or an avx512_core_amx one on one with AMX.
func ExampleConvShape_bfloat16() {
	s := ConvShape{N: 1, C: 16, H: 8, W: 8, K: 32, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 8, OW: 8, BF16: true}
	x := make([]float32, 1*16*8*8)
	w := make([]float32, 32*16*3*3)
	y := make([]float32, 1*32*8*8)
	ep := Epilogue{Scale: make([]float32, 32), Shift: make([]float32, 32), ReLU: true}
	ran, err := ConvOneDNN(s, x, w, ep, y)
	if err != nil {
		fmt.Println(err)
		return
	}
	impl, err := ConvOneDNNImpl(s, ep)
	fmt.Println("oneDNN ran it:", ran, "| its kernel:", impl, err)
}
