package compute

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/convref"
)

// loadedConvEngine returns oneDNN's convolution API, skipping the test
// with the Debian package to install when the library is absent.
func loadedConvEngine(t testing.TB) *dnnlConvEngine {
	t.Helper()
	e, err := loadConvEngine()
	if err != nil {
		if errors.Is(err, errNoOneDNN) {
			t.Skipf("oneDNN absent, install libdnnl2 (apt-get install libdnnl2): %v", err)
		}
		t.Fatal(err)
	}
	return e
}

// convShapeOf fills OH and OW.
func convShapeOf(n, c, h, w, k, kh, kw, sh, sw, ph, pw int) ConvShape {
	return ConvShape{N: n, C: c, H: h, W: w, K: k, KH: kh, KW: kw, SH: sh, SW: sw, PH: ph, PW: pw,
		OH: (h+2*ph-kh)/sh + 1, OW: (w+2*pw-kw)/sw + 1}
}

// convRef is a direct float64 convolution with the epilogue, rounded to
// float32.
func convRef(s ConvShape, x, w []float32, ep Epilogue) []float32 {
	want, _ := convRefMag(s, x, w, ep)
	y := make([]float32, len(want))
	for i, v := range want {
		y[i] = float32(v)
	}
	return y
}

// convRefMag is convref.Direct for s and ep: the float64 convolution and
// each output's magnitude |Scale|*sum|x*w| + |Shift| + |Residual|, which
// bounds the rounding error of a float32 evaluation.
func convRefMag(s ConvShape, x, w []float32, ep Epilogue) (want, mag []float64) {
	return convref.Direct(convref.Shape{N: s.N, C: s.C, H: s.H, W: s.W, K: s.K, KH: s.KH, KW: s.KW,
		SH: s.SH, SW: s.SW, PH: s.PH, PW: s.PW, OH: s.OH, OW: s.OW},
		x, w, convref.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU})
}

// TestConvOneDNN compares oneDNN's convolutions (forced, whatever
// implementation it picks) with a float64 direct convolution, for
// ResNet-like shapes, odd sizes whose last window leaves input unread, a
// batch, and every combination of epilogue parts.
func TestConvOneDNN(t *testing.T) {
	e := loadedConvEngine(t)
	shapes := []struct {
		name string
		s    ConvShape
	}{
		{"stem7x7s2", convShapeOf(1, 3, 38, 30, 16, 7, 7, 2, 2, 3, 3)},
		{"3x3s1", convShapeOf(1, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1)},
		{"3x3s2odd", convShapeOf(1, 16, 15, 13, 32, 3, 3, 2, 2, 1, 1)},
		{"1x1s2", convShapeOf(1, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0)},
		{"1x1s1", convShapeOf(1, 64, 9, 7, 24, 1, 1, 1, 1, 0, 0)},
		{"batch2-3x3", convShapeOf(2, 8, 11, 12, 20, 3, 3, 1, 1, 1, 1)},
		{"rect3x1pad", convShapeOf(1, 5, 10, 9, 7, 3, 1, 1, 2, 2, 0)},
	}
	eps := []struct {
		name                    string
		scale, shift, res, relu bool
	}{
		{"plain", false, false, false, false},
		{"bias", false, true, false, false},
		{"bias-relu", false, true, false, true},
		{"bn", true, true, false, false},
		{"bn-relu", true, true, false, true},
		{"bn-res-relu", true, true, true, true},
		{"scale-only", true, false, false, false},
		{"res", false, false, true, false},
		{"bias-res-relu", false, true, true, true},
	}
	rng := rand.New(rand.NewSource(7))
	for _, sc := range shapes {
		s := sc.s
		x := randSlice(rng, s.N*s.C*s.H*s.W)
		w := randSlice(rng, s.K*s.C*s.KH*s.KW)
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
				want := convRef(s, x, w, ep)
				y := make([]float32, len(want))
				for i := range y {
					y[i] = float32(math.NaN()) // must all be overwritten
				}
				// Three times: the second call reuses the cached
				// primitive with the handles set anew, the third takes
				// weights reordered beforehand.
				pw, err := e.newWeights(s, ep, w)
				if p, _ := e.prim(convKeyOf(s, ep)); p.wKind == "" {
					if err == nil {
						t.Fatal("newWeights reordered weights the primitive reads plain")
					}
					pw = nil
				} else if err != nil || pw.Kind() != p.wKind || pw.DerivedBytes() < int64(p.wBytes) {
					t.Fatalf("newWeights: %v", err)
				}
				for pass, pw := range []*OneDNNWeights{nil, nil, pw} {
					ran, err := e.run(s, x, w, pw, ep, y, true)
					if err != nil || !ran {
						t.Fatalf("run: ran %v, err %v", ran, err)
					}
					ckk := float64(s.C * s.KH * s.KW)
					tol := 1e-5 * math.Sqrt(ckk) * 4
					for i := range want {
						if d := math.Abs(float64(y[i] - want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
							p, _ := e.prim(convKeyOf(s, ep))
							t.Fatalf("pass %d, y[%d] = %v, want %v (impl %s)", pass, i, y[i], want[i], p.impl)
						}
					}
				}
			})
		}
	}
}

// TestConvOneDNNReLUNaN checks that ReLU keeps NaN as the Go epilogue
// does, and that an Inf input propagates.
func TestConvOneDNNReLUNaN(t *testing.T) {
	e := loadedConvEngine(t)
	s := convShapeOf(1, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1)
	rng := rand.New(rand.NewSource(1))
	x := randSlice(rng, s.N*s.C*s.H*s.W)
	w := randSlice(rng, s.K*s.C*s.KH*s.KW)
	x[3*8+3] = float32(math.NaN()) // channel 0, (3,3)
	y := make([]float32, s.N*s.K*s.OH*s.OW)
	if ran, err := e.run(s, x, w, nil, Epilogue{ReLU: true, Shift: make([]float32, s.K)}, y, true); err != nil || !ran {
		t.Fatalf("run: ran %v, err %v", ran, err)
	}
	for k := 0; k < s.K; k++ {
		for _, pos := range []int{2*8 + 2, 3*8 + 3, 4*8 + 4} {
			if v := y[k*64+pos]; !math.IsNaN(float64(v)) {
				t.Errorf("channel %d position %d: %v, want NaN (window over a NaN input)", k, pos, v)
			}
		}
		if v := y[k*64+7*8+7]; math.IsNaN(float64(v)) || v < 0 {
			t.Errorf("channel %d far corner: %v, want a ReLU'd number", k, v)
		}
	}
	// Without NaN: negatives and -0 become +0 exactly, positives stay.
	x[3*8+3] = 1
	if ran, err := e.run(s, x, w, nil, Epilogue{ReLU: true, Shift: make([]float32, s.K)}, y, true); err != nil || !ran {
		t.Fatalf("run: ran %v, err %v", ran, err)
	}
	want := convRef(s, x, w, Epilogue{})
	for i, v := range y {
		if want[i] <= 0 && math.Float32bits(v) != 0 || want[i] > 0 && math.Abs(float64(v-want[i])) > 1e-4 {
			t.Fatalf("y[%d] = %v for a pre-activation %v", i, v, want[i])
		}
	}
}

// TestReLUInPlace checks the ReLU applied to oneDNN's output against
// max(v, 0) with NaN kept, for every length around the vector width.
func TestReLUInPlace(t *testing.T) {
	vals := []float32{-1, 0, float32(math.Copysign(0, -1)), 2.5, float32(math.NaN()), float32(math.Inf(-1)), float32(math.Inf(1)), -1e-40, 1e-40}
	for n := 0; n <= 40; n++ {
		y := make([]float32, n)
		for i := range y {
			y[i] = vals[(i*7+n)%len(vals)]
		}
		orig := append([]float32(nil), y...)
		reluInPlace(y)
		for i, v := range orig {
			want := v
			if v <= 0 {
				want = 0
			}
			if math.Float32bits(y[i]) != math.Float32bits(want) && !(math.IsNaN(float64(v)) && math.IsNaN(float64(y[i]))) {
				t.Fatalf("n=%d: relu(%v) = %v, want %v", n, v, y[i], want)
			}
		}
	}
}

// TestConvOneDNNErrors checks the arguments ConvOneDNN refuses, under a
// forced oneDNN choice (and that nothing is refused when it is off).
func TestConvOneDNNErrors(t *testing.T) {
	loadedConvEngine(t)
	restore := SetConvChoice("onednn")
	defer restore()
	good := convShapeOf(1, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1)
	x, w, y := make([]float32, 4*64), make([]float32, 6*4*9), make([]float32, 6*64)
	bad := func(f func(*ConvShape)) ConvShape { s := good; f(&s); return s }
	cases := []struct {
		name       string
		s          ConvShape
		x, w, y    []float32
		ep         Epilogue
		wantInText string
	}{
		{"zero batch", bad(func(s *ConvShape) { s.N = 0 }), x, w, y, Epilogue{}, "N = 0"},
		{"zero stride", bad(func(s *ConvShape) { s.SH = 0 }), x, w, y, Epilogue{}, "SH = 0"},
		{"negative pad", bad(func(s *ConvShape) { s.PW = -1 }), x, w, y, Epilogue{}, "PW = -1"},
		{"wrong OH", bad(func(s *ConvShape) { s.OH = 7 }), x, w, y, Epilogue{}, "does not follow"},
		{"kernel over input", convShapeOf(1, 4, 2, 2, 6, 5, 5, 1, 1, 0, 0), x, w, y, Epilogue{}, "OH = -2"},
		{"kernel over input, OH given", ConvShape{N: 1, C: 4, H: 2, W: 2, K: 6, KH: 5, KW: 5, SH: 1, SW: 1, OH: 1, OW: 1}, x, w, y, Epilogue{}, "does not follow"},
		{"short x", good, x[:10], w, y, Epilogue{}, "len(x) = 10"},
		{"short w", good, x, w[:3], y, Epilogue{}, "len(w) = 3"},
		{"short y", good, x, w, y[:1], Epilogue{}, "len(y) = 1"},
		{"short scale", good, x, w, y, Epilogue{Scale: make([]float32, 2)}, "len(Scale) = 2"},
		{"short shift", good, x, w, y, Epilogue{Shift: make([]float32, 5)}, "len(Shift) = 5"},
		{"short residual", good, x, w, y, Epilogue{Residual: make([]float32, 9)}, "len(Residual) = 9"},
	}
	for _, bf16 := range []bool{false, true} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/bf16=%v", c.name, bf16), func(t *testing.T) {
				c.s.BF16 = bf16
				y := append([]float32(nil), c.y...)
				ran, err := ConvOneDNN(c.s, c.x, c.w, c.ep, y)
				if ran || !errors.Is(err, ErrConvShape) || !strings.Contains(err.Error(), c.wantInText) {
					t.Fatalf("ran %v, err %v; want ErrConvShape mentioning %q", ran, err, c.wantInText)
				}
				if _, err := ConvOneDNNPrepared(c.s, c.x, c.w, nil, c.ep, y); !errors.Is(err, ErrConvShape) {
					t.Fatalf("ConvOneDNNPrepared: err %v, want ErrConvShape", err)
				}
			})
		}
		s := good
		s.BF16 = bf16
		if ran, err := ConvOneDNN(s, x, w, Epilogue{}, y); !ran || err != nil {
			t.Fatalf("valid call (bf16 %v): ran %v, err %v", bf16, ran, err)
		}
	}
	restore2 := SetConvChoice("go")
	defer restore2()
	if ran, err := ConvOneDNN(good, x[:1], w, Epilogue{}, y); ran || err != nil {
		t.Fatalf("DETLAB_CONV=go: ran %v, err %v; want false, nil (the caller's code runs)", ran, err)
	}
}

// TestChooseConv checks DETLAB_CONV's values and what ConvBackend says.
func TestChooseConv(t *testing.T) {
	_, loadErr := loadConvEngine()
	cases := []struct {
		env      string
		mode     convMode
		withLib  bool // the mode and oneDNN in use hold only with the library
		contains string
	}{
		{"go", convGo, false, "DETLAB_CONV=go"},
		{"GO ", convGo, false, "DETLAB_CONV=go"},
		{"bogus", convGo, false, `unknown DETLAB_CONV="bogus"`},
		{"", convUnset, false, "bfloat16 inference on oneDNN where libdnnl loads"},
		{"auto", convAuto, true, "for folded-BN ones where it picks a JIT direct one"},
		{"onednn", convForced, true, "DETLAB_CONV=onednn"},
		{"dnnl", convForced, true, "DETLAB_CONV=onednn"},
	}
	for _, c := range cases {
		got := chooseConv(c.env)
		if c.withLib && loadErr != nil {
			if got.mode != convGo || got.eng != nil || !strings.Contains(got.name, "not installed") && !strings.Contains(got.name, "compute:") {
				t.Errorf("%q without oneDNN: %+v, want go with the reason", c.env, got)
			}
			continue
		}
		if got.mode != c.mode || (got.eng != nil) != (c.mode != convGo && c.mode != convUnset) || !strings.Contains(got.name, c.contains) {
			t.Errorf("chooseConv(%q) = mode %v, engine %v, %q; want mode %v, name containing %q", c.env, got.mode, got.eng != nil, got.name, c.mode, c.contains)
		}
	}
	if ConvBackend() == "" {
		t.Error("ConvBackend is empty")
	}
}

// TestConvOneDNNImpl checks that the implementation is reported and that
// on an AVX-512 CPU oneDNN picks a JIT direct convolution for ResNet18's
// shapes (auto mode's condition for using it).
func TestConvOneDNNImpl(t *testing.T) {
	loadedConvEngine(t)
	for _, s := range resnet18Convs {
		impl, err := ConvOneDNNImpl(s.s, Epilogue{Scale: []float32{}, Shift: []float32{}, ReLU: true})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Logf("%-12s %s", s.name, impl)
		if strings.HasPrefix(bestKernel().name, "avx512") && !jitDirect(impl) {
			t.Errorf("%s: oneDNN picked %q on an AVX-512 CPU, want a JIT direct convolution", s.name, impl)
		}
	}
	if _, err := ConvOneDNNImpl(ConvShape{}, Epilogue{}); !errors.Is(err, ErrConvShape) {
		t.Errorf("zero shape: %v, want ErrConvShape", err)
	}
}

// resnet18Convs are the distinct convolutions of ResNet18 at 224x224,
// batch 1, with how many times each runs in a forward pass.
var resnet18Convs = []struct {
	name  string
	s     ConvShape
	times int
}{
	{"conv1", convShapeOf(1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3), 1},
	{"layer1", convShapeOf(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1), 4},
	{"layer2.0", convShapeOf(1, 64, 56, 56, 128, 3, 3, 2, 2, 1, 1), 1},
	{"layer2", convShapeOf(1, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1), 3},
	{"layer2.ds", convShapeOf(1, 64, 56, 56, 128, 1, 1, 2, 2, 0, 0), 1},
	{"layer3.0", convShapeOf(1, 128, 28, 28, 256, 3, 3, 2, 2, 1, 1), 1},
	{"layer3", convShapeOf(1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1), 3},
	{"layer3.ds", convShapeOf(1, 128, 28, 28, 256, 1, 1, 2, 2, 0, 0), 1},
	{"layer4.0", convShapeOf(1, 256, 14, 14, 512, 3, 3, 2, 2, 1, 1), 1},
	{"layer4", convShapeOf(1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1), 3},
	{"layer4.ds", convShapeOf(1, 256, 14, 14, 512, 1, 1, 2, 2, 0, 0), 1},
}

// TestConvOneDNNPreparedWeights checks that prepared weights are used as
// they are (the plain ones are not reordered again) when their layout
// matches, and ignored when it does not.
func TestConvOneDNNPreparedWeights(t *testing.T) {
	e := loadedConvEngine(t)
	rng := rand.New(rand.NewSource(3))
	s := convShapeOf(1, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1)
	other := convShapeOf(1, 32, 12, 12, 16, 3, 3, 1, 1, 1, 1)
	x := randSlice(rng, s.N*s.C*s.H*s.W)
	w, w2 := randSlice(rng, s.K*s.C*s.KH*s.KW), randSlice(rng, s.K*s.C*s.KH*s.KW)
	pw2, err := e.newWeights(s, Epilogue{}, w2)
	if err != nil {
		t.Skipf("oneDNN reads this convolution's weights plain: %v", err)
	}
	pOther, err := e.newWeights(other, Epilogue{}, make([]float32, len(w)))
	if err != nil {
		t.Skipf("oneDNN reads this convolution's weights plain: %v", err)
	}
	y := make([]float32, s.N*s.K*s.OH*s.OW)
	for _, c := range []struct {
		name string
		pw   *OneDNNWeights
		want []float32
	}{
		{"prepared from w2", pw2, convRef(s, x, w2, Epilogue{})},
		{"none", nil, convRef(s, x, w, Epilogue{})},
		{"another layout", pOther, convRef(s, x, w, Epilogue{})},
	} {
		if pOther.Kind() == pw2.Kind() && c.name == "another layout" {
			continue
		}
		if ran, err := e.run(s, x, w, c.pw, Epilogue{}, y, true); !ran || err != nil {
			t.Fatalf("%s: ran %v, err %v", c.name, ran, err)
		}
		for i := range y {
			if d := math.Abs(float64(y[i] - c.want[i])); d > 1e-4*(1+math.Abs(float64(c.want[i]))) {
				t.Fatalf("%s: y[%d] = %v, want %v", c.name, i, y[i], c.want[i])
			}
		}
	}
}

// TestConvBackendHonoursEnv fails when DETLAB_CONV=onednn but oneDNN's
// convolutions, whose library loads here, are not in use, so that a run
// of the parity tests under it (internal/backendmatrix) cannot pass on a
// silent fallback. It logs ConvBackend for the matrix to compare.
func TestConvBackendHonoursEnv(t *testing.T) {
	t.Logf("detlab-conv: %s", ConvBackend())
	switch env := strings.ToLower(strings.TrimSpace(os.Getenv(EnvConv))); env {
	case "onednn", "dnnl":
		if _, err := loadConvEngine(); errors.Is(err, errNoOneDNN) {
			t.Skipf("%s=onednn but oneDNN is absent, install libdnnl2: %v", EnvConv, err)
		}
		if got := ConvBackend(); !strings.HasPrefix(got, "onednn ") || convChosen().eng == nil {
			t.Fatalf("%s=%s but ConvBackend() = %q", EnvConv, env, got)
		}
	case "go", "purego", "pure":
		if got := ConvBackend(); !strings.HasPrefix(got, "go (") || convChosen().eng != nil {
			t.Fatalf("%s=%s but ConvBackend() = %q", EnvConv, env, got)
		}
	case "":
		// bfloat16 inference only: the kernel it would run on, or that
		// oneDNN does not load (DETLAB_ONEDNN=/nonexistent tries that).
		want := "bfloat16 3x3: "
		if _, err := loadConvEngine(); err != nil {
			want = "go (im2col + Sgemm; bfloat16 inference too: oneDNN's convolutions do not load)"
		}
		if got := ConvBackend(); !strings.HasPrefix(got, "go (") || !strings.Contains(got, want) {
			t.Fatalf("%s unset: ConvBackend() = %q, want it to contain %q", EnvConv, got, want)
		}
	}
}

// TestConvOneDNNAuto checks what DETLAB_CONV=auto sends to oneDNN: a
// convolution with a folded BatchNorm (on an AVX-512 CPU, where oneDNN
// picks brgconv), not a plain or biased one.
func TestConvOneDNNAuto(t *testing.T) {
	loadedConvEngine(t)
	restore := SetConvChoice("auto")
	defer restore()
	s := convShapeOf(1, 16, 10, 10, 32, 3, 3, 1, 1, 1, 1)
	rng := rand.New(rand.NewSource(5))
	x, w := randSlice(rng, s.N*s.C*s.H*s.W), randSlice(rng, s.K*s.C*s.KH*s.KW)
	y := make([]float32, s.N*s.K*s.OH*s.OW)
	bn := Epilogue{Scale: randSlice(rng, s.K), Shift: randSlice(rng, s.K), ReLU: true}
	for _, c := range []struct {
		name string
		ep   Epilogue
		want bool
	}{
		{"plain", Epilogue{}, false},
		{"bias-relu", Epilogue{Shift: bn.Shift, ReLU: true}, false},
		{"folded BN", bn, strings.HasPrefix(bestKernel().name, "avx512")},
	} {
		ran, err := ConvOneDNN(s, x, w, c.ep, y)
		if err != nil || (c.want && !ran) || (!c.want && ran) {
			t.Errorf("%s: ran %v, err %v; want ran %v", c.name, ran, err, c.want)
		}
		if kind, use := ConvOneDNNWeightsKind(s, c.ep); use != ran {
			t.Errorf("%s: ConvOneDNNWeightsKind says use %v (%q), ConvOneDNN ran %v", c.name, use, kind, ran)
		}
	}
}

// ExampleConvOneDNN runs a 3x3 convolution with a folded BatchNorm and a
// ReLU through oneDNN when DETLAB_CONV selects it, else says so (the
// caller then runs its own convolution).
func ExampleConvOneDNN() {
	s := ConvShape{N: 1, C: 16, H: 8, W: 8, K: 32, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 8, OW: 8}
	x := make([]float32, 1*16*8*8)
	w := make([]float32, 32*16*3*3)
	y := make([]float32, 1*32*8*8)
	scale, shift := make([]float32, 32), make([]float32, 32)
	ran, err := ConvOneDNN(s, x, w, Epilogue{Scale: scale, Shift: shift, ReLU: true}, y)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("oneDNN ran it:", ran, "|", ConvBackend())
}

// TestConvOneDNNConcurrent calls the oneDNN path from several goroutines
// at once (calls are serialised on the engine; each must still see its
// own operands).
func TestConvOneDNNConcurrent(t *testing.T) {
	e := loadedConvEngine(t)
	rng := rand.New(rand.NewSource(9))
	shapes := []ConvShape{
		convShapeOf(1, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1),
		convShapeOf(2, 16, 8, 8, 16, 1, 1, 2, 2, 0, 0),
		convShapeOf(1, 3, 17, 17, 8, 7, 7, 2, 2, 3, 3),
	}
	type job struct {
		s       ConvShape
		x, w    []float32
		ep      Epilogue
		want, y []float32
	}
	var jobs []*job
	for i := 0; i < 6; i++ {
		s := shapes[i%len(shapes)]
		j := &job{s: s, x: randSlice(rng, s.N*s.C*s.H*s.W), w: randSlice(rng, s.K*s.C*s.KH*s.KW),
			ep: Epilogue{Scale: randSlice(rng, s.K), Shift: randSlice(rng, s.K), ReLU: i%2 == 0}}
		if i >= 3 {
			j.ep.Residual = randSlice(rng, s.N*s.K*s.OH*s.OW)
		}
		j.want = convRef(s, j.x, j.w, j.ep)
		j.y = make([]float32, len(j.want))
		jobs = append(jobs, j)
	}
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		go func() {
			for range 5 {
				if ran, err := e.run(j.s, j.x, j.w, nil, j.ep, j.y, true); !ran || err != nil {
					errs <- fmt.Errorf("%+v: ran %v, err %v", j.s, ran, err)
					return
				}
				for i := range j.y {
					if d := math.Abs(float64(j.y[i] - j.want[i])); d > 1e-4*(1+math.Abs(float64(j.want[i]))) {
						errs <- fmt.Errorf("%+v: y[%d] = %v, want %v", j.s, i, j.y[i], j.want[i])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range jobs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
