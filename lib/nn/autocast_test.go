package nn

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/tensor"
)

func TestRoundBF16(t *testing.T) {
	inf := float32(math.Inf(1))
	cases := []struct {
		in, want float32
	}{
		{1, 1},
		{-2.5, -2.5},
		{1 + 1.0/256, 1},                       // tie between 1 and 1+2^-7: even (1)
		{1 + 3.0/256, 1 + 1.0/64},              // tie between 1+2^-7 and 1+2^-6: even
		{1 + 1.0/256 + 1.0/65536, 1 + 1.0/128}, // above the tie rounds up
		{0, 0},
		{math.MaxFloat32, inf},
		{-math.MaxFloat32, -inf},
		{inf, inf},
	}
	for _, c := range cases {
		if got := RoundBF16(c.in); got != c.want {
			t.Errorf("RoundBF16(%g) = %g, want %g", c.in, got, c.want)
		}
		if got := BFloat16.Round(c.in); got != c.want {
			t.Errorf("BFloat16.Round(%g) = %g, want %g", c.in, got, c.want)
		}
	}
	if v := RoundBF16(float32(math.NaN())); v == v {
		t.Errorf("RoundBF16(NaN) = %g, want NaN", v)
	}
}

func TestRoundFP16(t *testing.T) {
	inf := float32(math.Inf(1))
	p24 := float32(1.0 / (1 << 24))
	cases := []struct {
		in, want float32
	}{
		{1, 1},
		{1 + 1.0/2048, 1},           // tie: even
		{1 + 3.0/2048, 1 + 1.0/512}, // tie: even
		{65504, 65504},              // largest finite half
		{65519, 65504},              // below the midpoint
		{65520, inf},                // the midpoint rounds to even: overflow
		{1e5, inf},
		{-1e5, -inf},
		{p24, p24},           // smallest subnormal
		{p24 / 2, 0},         // tie with 0: even
		{p24 * 1.5, 2 * p24}, // tie: even
	}
	for _, c := range cases {
		if got := RoundFP16(c.in); got != c.want {
			t.Errorf("RoundFP16(%g) = %g, want %g", c.in, got, c.want)
		}
	}
	// Subnormal range: the result is a multiple of 2^-24 within half a step.
	v := float32(6.1e-6)
	r := RoundFP16(v)
	if q := float64(r) / float64(p24); q != math.Trunc(q) || math.Abs(float64(r-v)) > float64(p24)/2 {
		t.Errorf("RoundFP16(%g) = %g, not the nearest multiple of 2^-24", v, r)
	}
	if v := RoundFP16(float32(math.NaN())); v == v {
		t.Errorf("RoundFP16(NaN) = %g, want NaN", v)
	}
	if Float32.Round(1+1.0/2048) != 1+1.0/2048 {
		t.Error("Float32.Round changed its input")
	}
}

func relL2(got, want []float32) float64 {
	var num, den float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

// autocastRun runs conv -> linear -> sum under precision p and returns the
// conv output, the linear output and the gradients of both weights and of
// the input.
func autocastRun(t *testing.T, p Precision, x *tensor.Tensor, conv *Conv2d, lin *Linear) (convOut, linOut, dwConv, dwLin, dx []float32) {
	t.Helper()
	ZeroGrads(conv.Params())
	ZeroGrads(lin.Params())
	g := NewGraph().WithAutocast(p)
	xv := g.Leaf(x, true)
	y, err := conv.Forward(g, xv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Reshape(g, y, y.Shape()[0], -1)
	if err != nil {
		t.Fatal(err)
	}
	z, err := lin.Forward(g, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(Sum(g, square(t, g, z))); err != nil {
		t.Fatal(err)
	}
	cp := func(s []float32) []float32 { return append([]float32(nil), s...) }
	return cp(y.Value.Data()), cp(z.Value.Data()), cp(conv.Weight.Grad.Data()), cp(lin.Weight.Grad.Data()), cp(xv.Grad.Data())
}

// square squares z so the output gradient is not constant.
func square(t *testing.T, g *Graph, z *Var) *Var {
	t.Helper()
	v, err := Mul(g, z, z)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAutocastCloseToFloat32 checks conv and linear under BFloat16 and
// Float16 against float32. Rounding each operand to p costs a relative
// error of at most u (2^-8 for bfloat16, 2^-11 for float16) per operand;
// with float32 accumulation the relative L2 error of a product is about
// u*sqrt(2/3) (uniform rounding errors on two operands), so outputs and
// gradients must agree within 4u, and must differ from float32 (the
// rounding is really applied).
func TestAutocastCloseToFloat32(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	conv, err := NewConv2d("c", 3, 8, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	lin, err := NewLinear("l", 8*6*6, 5, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rng, 0, 2, 3, 6, 6)
	c32, l32, dc32, dl32, dx32 := autocastRun(t, Float32, x, conv, lin)
	for _, tc := range []struct {
		p Precision
		u float64
	}{{BFloat16, 1.0 / 256}, {Float16, 1.0 / 2048}} {
		c, l, dc, dl, dx := autocastRun(t, tc.p, x, conv, lin)
		for _, r := range []struct {
			name      string
			got, want []float32
		}{{"conv out", c, c32}, {"linear out", l, l32}, {"conv dW", dc, dc32}, {"linear dW", dl, dl32}, {"dx", dx, dx32}} {
			e := relL2(r.got, r.want)
			if e > 4*tc.u || e == 0 {
				t.Errorf("%v %s: relative L2 error %.3g, want in (0, %.3g]", tc.p, r.name, e, 4*tc.u)
			}
		}
	}
}

// emulatedCPU is the CPU backend with native reduced precision turned off,
// as a backend embedding CPU whose kernels ignore ConvGeom.Precision must
// do: layers then round their operands themselves.
type emulatedCPU struct{ CPU }

func (emulatedCPU) NativePrecision(Precision) bool { return false }

// TestAutocastMatchesRoundedOperands checks that the emulated autocast conv
// output is exactly the float32 conv of the rounded input and weight, and
// that the native one (where the CPU has it) is within summation-order
// noise of it (see TestAutocastNativeMatchesEmulated for the tolerance).
func TestAutocastMatchesRoundedOperands(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	conv, err := NewConv2d("c", 4, 6, 3, 2, 1, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(rng, 0, 1, 4, 9, 9)
	run := func(be Backend) []float32 {
		g := NewInferenceGraph().WithBackend(be).WithAutocast(BFloat16)
		if g.Autocast() != BFloat16 {
			t.Fatalf("Autocast() = %v", g.Autocast())
		}
		y, err := conv.Forward(g, g.Input(x))
		if err != nil {
			t.Fatal(err)
		}
		return y.Value.Data()
	}
	emulated, native := run(emulatedCPU{}), run(CPU{})
	xr := x.Clone()
	BFloat16.RoundSlice(xr.Data(), xr.Data())
	w := conv.Weight.Value.Clone()
	BFloat16.RoundSlice(conv.Weight.Value.Data(), w.Data())
	g2 := NewInferenceGraph().WithBackend(CPU{})
	y2, err := conv.Forward(g2, g2.Input(xr))
	copy(conv.Weight.Value.Data(), w.Data())
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range emulated {
		if v != y2.Value.Data()[i] {
			t.Fatalf("element %d: emulated autocast %g, rounded float32 %g", i, v, y2.Value.Data()[i])
		}
	}
	if e := relL2(native, y2.Value.Data()); e > nativeTol {
		t.Errorf("native autocast vs rounded float32: relative L2 %.3g > %.3g", e, nativeTol)
	}
}

// nativeTol bounds the relative L2 difference between native and emulated
// bfloat16 products. Both multiply the same bfloat16 operands, whose
// products are exact in float32, and accumulate in float32; only the order
// of the additions differs. Each sum of k random-sign terms carries a
// rounding error of about 2^-24 sqrt(k/2) relative to its value (about 1e-6
// for the k <= 600 used here) whatever the order; 1e-5 leaves a factor of
// ten, while a single bfloat16 rounding applied or missed moves a result
// by about 2^-8 (4e-3).
const nativeTol = 1e-5

// layerGrads runs one layer on x under p and backend be with a fixed output
// gradient gy (bfloat16-exact, so no computed value is rounded between the
// two paths) and returns the output and the input, weight and bias
// gradients.
func layerGrads(t *testing.T, be Backend, p Precision, fwd func(*Graph, *Var) (*Var, error), params []*Param, x, gy *tensor.Tensor) [][]float32 {
	t.Helper()
	ZeroGrads(params)
	g := NewGraph().WithBackend(be).WithAutocast(p)
	xv := g.Leaf(x, true)
	y, err := fwd(g, xv)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := Mul(g, y, g.Input(gy))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(Sum(g, prod)); err != nil {
		t.Fatal(err)
	}
	cp := func(s []float32) []float32 { return append([]float32(nil), s...) }
	out := [][]float32{cp(y.Value.Data()), cp(xv.Grad.Data())}
	for _, p := range params {
		out = append(out, cp(p.Grad.Data()))
	}
	return out
}

// TestAutocastNativeMatchesEmulated checks that bfloat16 autocast on the
// native kernels (compute.SgemmBF16) gives the emulated path's numbers
// within nativeTol, for the output and every gradient of a conv (stride 2,
// padding, batch 2, odd channel counts, and a pointwise one) and a linear
// layer, and that both really differ from float32.
func TestAutocastNativeMatchesEmulated(t *testing.T) {
	if !(CPU{}).NativePrecision(BFloat16) {
		t.Skipf("no native bfloat16 on this CPU (%s): %s", compute.CPU(), compute.BF16Backend())
	}
	rng := rand.New(rand.NewSource(6))
	exact := func(shape ...int) *tensor.Tensor {
		v := randTensor(rng, 0, shape...)
		BFloat16.RoundSlice(v.Data(), v.Data())
		return v
	}
	conv3, err := NewConv2d("c3", 5, 7, 3, 2, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	conv1, err := NewConv2d("c1", 33, 17, 1, 1, 0, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	lin, err := NewLinear("l", 75, 37, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		fwd    func(*Graph, *Var) (*Var, error)
		params []*Param
		x, gy  *tensor.Tensor
	}{
		{"conv 3x3 stride 2", conv3.Forward, conv3.Params(), randTensor(rng, 0, 2, 5, 11, 13), exact(2, 7, 6, 7)},
		{"conv 1x1", conv1.Forward, conv1.Params(), randTensor(rng, 0, 2, 33, 5, 6), exact(2, 17, 5, 6)},
		{"linear", lin.Forward, lin.Params(), randTensor(rng, 0, 9, 75), exact(9, 37)},
	}
	names := []string{"output", "input gradient", "weight gradient", "bias gradient"}
	for _, tc := range cases {
		native := layerGrads(t, CPU{}, BFloat16, tc.fwd, tc.params, tc.x, tc.gy)
		emulated := layerGrads(t, emulatedCPU{}, BFloat16, tc.fwd, tc.params, tc.x, tc.gy)
		f32 := layerGrads(t, CPU{}, Float32, tc.fwd, tc.params, tc.x, tc.gy)
		for i := range native {
			if e := relL2(native[i], emulated[i]); e > nativeTol {
				t.Errorf("%s %s: native vs emulated relative L2 %.3g > %.3g", tc.name, names[i], e, nativeTol)
			}
			if i == 3 {
				continue // the bias gradient sums gy, which is bfloat16-exact
			}
			if e := relL2(native[i], f32[i]); e < 1e-4 {
				t.Errorf("%s %s: native bfloat16 within %.3g of float32: operands not rounded", tc.name, names[i], e)
			}
		}
	}
}

// TestAutocastKernels checks what AutocastKernels and NativePrecision say:
// bfloat16 is native exactly where compute.HasBF16, float16 never is on
// the CPU.
func TestAutocastKernels(t *testing.T) {
	if (CPU{}).NativePrecision(Float16) || (CPU{}).NativePrecision(Float32) {
		t.Error("CPU reports float16 or float32 as native reduced precision")
	}
	if got := (CPU{}).NativePrecision(BFloat16); got != compute.HasBF16() {
		t.Errorf("NativePrecision(BFloat16) = %v, compute.HasBF16() = %v", got, compute.HasBF16())
	}
	if s := AutocastKernels(Float16); !strings.Contains(s, "emulated") {
		t.Errorf("AutocastKernels(Float16) = %q, want emulated", s)
	}
	s := AutocastKernels(BFloat16)
	if strings.Contains(s, "native") != compute.HasBF16() {
		t.Errorf("AutocastKernels(BFloat16) = %q with compute.HasBF16() = %v", s, compute.HasBF16())
	}
	t.Log(s)
}

// TestAutocastFloat16Overflow checks that float16 overflow reaches the
// output and the gradients as Inf, as a gradient scaler needs.
func TestAutocastFloat16Overflow(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	lin, err := NewLinear("l", 4, 3, false, rng)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.MustFromSlice([]float32{1e5, 1, 2, 3}, 1, 4)
	g := NewGraph().WithAutocast(Float16)
	y, err := lin.Forward(g, g.Leaf(x, true))
	if err != nil {
		t.Fatal(err)
	}
	inf := 0
	for _, v := range y.Value.Data() {
		if math.IsInf(float64(v), 0) {
			inf++
		}
	}
	if inf == 0 {
		t.Errorf("float16 input 1e5 gave finite outputs %v", y.Value.Data())
	}
	// A scaled loss whose gradient overflows float16.
	g2 := NewGraph().WithAutocast(Float16)
	x2 := tensor.MustFromSlice([]float32{1, 1, 1, 1}, 1, 4)
	y2, err := lin.Forward(g2, g2.Leaf(x2, true))
	if err != nil {
		t.Fatal(err)
	}
	ZeroGrads(lin.Params())
	if err := g2.Backward(Sum(g2, MulScalar(g2, y2, 1e6))); err != nil {
		t.Fatal(err)
	}
	for i, v := range lin.Weight.Grad.Data() {
		if !math.IsInf(float64(v), 0) {
			t.Fatalf("weight gradient %d = %g under a 1e6 loss scale, want Inf", i, v)
		}
	}
	// The same in bfloat16 stays finite (float32's range).
	g3 := NewGraph().WithAutocast(BFloat16)
	y3, _ := lin.Forward(g3, g3.Leaf(x2, true))
	ZeroGrads(lin.Params())
	if err := g3.Backward(Sum(g3, MulScalar(g3, y3, 1e6))); err != nil {
		t.Fatal(err)
	}
	for i, v := range lin.Weight.Grad.Data() {
		if math.IsInf(float64(v), 0) || v != v {
			t.Fatalf("bfloat16 weight gradient %d = %g, want finite", i, v)
		}
	}
}

func TestPrecisionString(t *testing.T) {
	for p, want := range map[Precision]string{Float32: "float32", BFloat16: "bfloat16", Float16: "float16", 7: "Precision(7)"} {
		if p.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(p), p.String(), want)
		}
	}
	if s := AutocastKernels(BFloat16); s == "" || s == AutocastKernels(Float32) {
		t.Errorf("AutocastKernels(BFloat16) = %q", s)
	}
}

// TestRoundSliceMatchesRound checks that the sliced rounding (vectorised
// for bfloat16) gives Round's bits on odd lengths, in place and not.
func TestRoundSliceMatchesRound(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, p := range []Precision{BFloat16, Float16, Float32} {
		for _, n := range []int{1, 17, 8193, 20000} {
			src := make([]float32, n)
			for i := range src {
				src[i] = math.Float32frombits(rng.Uint32())
			}
			for _, inPlace := range []bool{false, true} {
				in := append([]float32(nil), src...)
				dst := make([]float32, n)
				if inPlace {
					dst = in
				}
				p.RoundSlice(dst, in)
				for i, v := range src {
					want := p.Round(v)
					if math.Float32bits(dst[i]) != math.Float32bits(want) && !(want != want && dst[i] != dst[i]) {
						t.Fatalf("%v n=%d: RoundSlice(%#08x) = %#08x, Round gives %#08x", p, n, math.Float32bits(v), math.Float32bits(dst[i]), math.Float32bits(want))
					}
				}
			}
		}
	}
}
