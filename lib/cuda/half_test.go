package cuda_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/train"
)

// Native autocast (precision.go): the same checks run on the fake device
// here and on a GPU by the TestGPUHalf* tests, which scripts/gpu-check
// runs (cuda.test -test.run .).
//
// Reference: nn.CPU's float32 product of the operands rounded to the
// precision (nn.Precision.RoundSlice). A native product equals it up to
// the order of the float32 additions: halfTol. On the GPU the tensor cores'
// float32 accumulation may round differently inside a product, so the
// tolerance is looser there, and a second check makes sure the operands
// really were rounded: the result must be several times closer to the
// rounded reference than to the float32 product of the unrounded
// operands.

// relL2 is ||got-want|| / ||want||.
func relL2(got, want []float32) float64 {
	var d, w float64
	for i := range want {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		w += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d / math.Max(w, 1e-300))
}

// halfTol is the tolerance of a native reduced-precision product against
// the float32 product of the rounded operands.
func halfTol(want []float32, onGPU bool) golden.Tol {
	if onGPU {
		return golden.Tol{Atol: 2e-4*maxAbs(want) + 1e-6, RelL2: 5e-5}
	}
	return golden.Tol{Atol: 2e-5*maxAbs(want) + 1e-6, RelL2: 1e-5}
}

// halfCheck compares a native result with the rounded reference and,
// where the rounding changes the product measurably, requires it to be
// at least 4x closer to that than to the unrounded product.
func halfCheck(t *testing.T, what string, got, rounded, unrounded []float32, onGPU bool) {
	t.Helper()
	if d := golden.Compare(got, rounded, halfTol(rounded, onGPU)); d != "" {
		t.Errorf("%s: against the float32 product of the rounded operands: %s", what, d)
		return
	}
	dr, du := relL2(got, rounded), relL2(got, unrounded)
	if relL2(rounded, unrounded) > 2e-5 && !(dr < du/4) {
		t.Errorf("%s: rel-L2 %.2e from the rounded product, %.2e from the unrounded one: the operands were not rounded", what, dr, du)
	}
}

func roundedCopy(p nn.Precision, x []float32) []float32 {
	r := make([]float32, len(x))
	p.RoundSlice(r, x)
	return r
}

// halfGemmChecks runs GemmPrecision on b against nn.CPU's Gemm of the
// rounded (and of the unrounded) operands: transposes, leading dimensions
// with gaps, alpha and beta, Go and managed memory.
func halfGemmChecks(t *testing.T, b *cuda.Backend, p nn.Precision, onGPU bool) {
	rng := rand.New(rand.NewSource(41))
	managed := func(x []float32) []float32 {
		y := b.Alloc(len(x))
		copy(y, x)
		return y
	}
	clone := func(x []float32) []float32 { return append([]float32(nil), x...) }
	for _, c := range []struct {
		ta, tb  bool
		m, n, k int
	}{{false, false, 64, 48, 96}, {true, false, 33, 17, 200}, {false, true, 300, 256, 512}, {true, true, 7, 9, 11}, {false, true, 1, 1, 1}} {
		lda, ldb := c.k+3, c.n+1
		if c.ta {
			lda = c.m + 2
		}
		if c.tb {
			ldb = c.k + 5
		}
		ar, br := c.m, c.k
		if c.ta {
			ar = c.k
		}
		if c.tb {
			br = c.n
		}
		a, bm, cc := randn(rng, ar*lda), randn(rng, br*ldb), randn(rng, c.m*(c.n+4))
		wantR, wantU := clone(cc), clone(cc)
		nn.CPU{}.Gemm(c.ta, c.tb, c.m, c.n, c.k, 1.25, roundedCopy(p, a), lda, roundedCopy(p, bm), ldb, 0.5, wantR, c.n+4)
		nn.CPU{}.Gemm(c.ta, c.tb, c.m, c.n, c.k, 1.25, a, lda, bm, ldb, 0.5, wantU, c.n+4)
		for _, mem := range []struct {
			name string
			buf  func([]float32) []float32
		}{{"go", clone}, {"managed", managed}} {
			got := mem.buf(cc)
			b.GemmPrecision(p, c.ta, c.tb, c.m, c.n, c.k, 1.25, mem.buf(a), lda, mem.buf(bm), ldb, 0.5, got, c.n+4)
			syncT(t, b)
			halfCheck(t, fmt.Sprintf("GemmPrecision %v %+v [%s]", p, c, mem.name), got, wantR, wantU, onGPU)
		}
	}
}

// halfConvChecks runs Conv2d and Conv2dBackward with geo.Precision p on b
// (ResNet and Faster R-CNN layer shapes: stem, 3x3, strided 1x1
// downsample, pointwise head) against nn.CPU's float32 convolution of the
// rounded operands. dy is rounded too: layers hand the backward pass the
// rounded output gradient, and rounding again changes nothing.
func halfConvChecks(t *testing.T, b *cuda.Backend, p nn.Precision, onGPU bool) {
	geos := []nn.ConvGeom{
		convGeom(2, 3, 64, 80, 64, 7, 2, 3),
		convGeom(2, 64, 28, 30, 64, 3, 1, 1),
		convGeom(2, 64, 28, 30, 128, 1, 2, 0),
		convGeom(1, 512, 14, 15, 15, 1, 1, 0),
		convGeom(3, 5, 13, 11, 7, 3, 2, 1),
	}
	for gi, geo := range geos {
		rng := rand.New(rand.NewSource(int64(50 + gi)))
		ohw := geo.OH * geo.OW
		x := randn(rng, geo.N*geo.C*geo.H*geo.W)
		w := randn(rng, geo.K*geo.C*geo.KH*geo.KW)
		bias := randn(rng, geo.K)
		dy := roundedCopy(p, randn(rng, geo.N*geo.K*ohw))
		dx0, dw0, db0 := randn(rng, len(x)), randn(rng, len(w)), randn(rng, geo.K)
		run := func(be nn.Backend, geo nn.ConvGeom, x, w []float32) [][]float32 {
			y := make([]float32, geo.N*geo.K*ohw)
			be.Conv2d(geo, x, w, bias, y, nn.NewArena())
			dx, dw, db := append([]float32(nil), dx0...), append([]float32(nil), dw0...), append([]float32(nil), db0...)
			be.Conv2dBackward(geo, x, w, dy, dx, dw, db, nn.NewArena())
			return [][]float32{y, dx, dw, db}
		}
		wantR := run(nn.CPU{}, geo, roundedCopy(p, x), roundedCopy(p, w))
		wantU := run(nn.CPU{}, geo, x, w)
		hg := geo
		hg.Precision = p
		got := run(b, hg, x, w)
		for i, name := range []string{"y", "dx", "dw", "db"} {
			halfCheck(t, fmt.Sprintf("conv %v %+v %s", p, geo, name), got[i], wantR[i], wantU[i], onGPU)
		}
	}
}

// halfLayerChecks runs Conv2d and Linear layers forward and backward
// under autocast on graphs over b and over nn.CPU: b must take the native
// path (NativePrecision) and agree with the CPU's autocast (emulated, or
// bfloat16 on AVX512_BF16). The loss weights each output by a fixed
// tensor, so the output gradient does not depend on the forward's
// summation order.
func halfLayerChecks(t *testing.T, b *cuda.Backend, p nn.Precision, onGPU bool) {
	type layer interface {
		Forward(g *nn.Graph, x *nn.Var) (*nn.Var, error)
		Params() []*nn.Param
	}
	cases := []struct {
		name  string
		shape []int
		make  func(rng *rand.Rand) (layer, error)
	}{
		{"conv3x3", []int{2, 6, 11, 9}, func(rng *rand.Rand) (layer, error) { return nn.NewConv2d("c", 6, 16, 3, 1, 1, true, rng) }},
		{"conv1x1/2", []int{3, 8, 10, 10}, func(rng *rand.Rand) (layer, error) { return nn.NewConv2d("d", 8, 12, 1, 2, 0, false, rng) }},
		{"linear", []int{5, 37}, func(rng *rand.Rand) (layer, error) { return nn.NewLinear("l", 37, 11, true, rng) }},
	}
	for _, c := range cases {
		run := func(be nn.Backend) [][]float32 {
			rng := rand.New(rand.NewSource(7))
			l, err := c.make(rng)
			if err != nil {
				t.Fatal(err)
			}
			n := 1
			for _, d := range c.shape {
				n *= d
			}
			x := tensor.MustFromSlice(randn(rng, n), c.shape...)
			g := nn.NewGraph().WithBackend(be).WithAutocast(p)
			defer g.Release()
			xv := g.Leaf(x, true)
			y, err := l.Forward(g, xv)
			if err != nil {
				t.Fatal(err)
			}
			r := tensor.MustFromSlice(randn(rng, y.Value.Len()), y.Shape()...)
			prod, err := nn.Mul(g, y, g.Input(r))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Backward(nn.Sum(g, prod)); err != nil {
				t.Fatal(err)
			}
			out := [][]float32{append([]float32(nil), y.Value.Data()...), append([]float32(nil), xv.Grad.Data()...)}
			for _, prm := range l.Params() {
				out = append(out, append([]float32(nil), prm.Grad.Data()...))
			}
			return out
		}
		want := run(nn.CPU{})
		before := b.Stats()
		got := run(b)
		if after := b.Stats(); after.GEMMs == before.GEMMs {
			t.Errorf("%s %v: no GEMM ran on the backend", c.name, p)
		}
		for i := range want {
			if d := golden.Compare(got[i], want[i], halfTol(want[i], onGPU)); d != "" {
				t.Errorf("%s %v, result %d (y, dx, then the parameters' gradients): %s", c.name, p, i, d)
			}
		}
	}
}

// halfChecks runs every check for the precisions b multiplies natively
// and returns how many it ran.
func halfChecks(t *testing.T, b *cuda.Backend, onGPU bool) int {
	ran := 0
	for _, p := range []nn.Precision{nn.BFloat16, nn.Float16} {
		if !b.NativePrecision(p) {
			t.Logf("%s: no native %v (GemmPrecision rounds and multiplies in float32)", b.Name(), p)
			continue
		}
		ran++
		halfGemmChecks(t, b, p, onGPU)
		halfConvChecks(t, b, p, onGPU)
		halfLayerChecks(t, b, p, onGPU)
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
	return ran
}

func TestHalfOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	if !b.NativePrecision(nn.BFloat16) || !b.NativePrecision(nn.Float16) || b.NativePrecision(nn.Float32) {
		t.Fatal("the fake device should multiply bfloat16 and float16 natively, and Float32 is never 'native'")
	}
	halfChecks(t, b, false)
}

// TestGPUHalf: the same checks with cublasGemmEx on the GPU (bfloat16 needs
// compute capability 8.0), and the time of a ResNet-sized convolution's
// forward and backward in float32, bfloat16 and float16 for the log.
func TestGPUHalf(t *testing.T) {
	b := gpu(t)
	if halfChecks(t, b, true) == 0 {
		t.Skipf("%s multiplies neither bfloat16 nor float16 natively", b.Name())
	}
	if fakeMode() {
		return // timing the fake device's Go loops says nothing
	}
	geo := convGeom(8, 128, 80, 60, 128, 3, 1, 1)
	rng := rand.New(rand.NewSource(60))
	alloc := func(n int) []float32 {
		y := b.Alloc(n)
		copy(y, randn(rng, n))
		return y
	}
	x, w := alloc(geo.N*geo.C*geo.H*geo.W), alloc(geo.K*geo.C*9)
	y, dy := alloc(geo.N*geo.K*geo.OH*geo.OW), alloc(geo.N*geo.K*geo.OH*geo.OW)
	dx, dw := alloc(len(x)), alloc(len(w))
	defer func() {
		for _, s := range [][]float32{x, w, y, dy, dx, dw} {
			b.Free(s)
		}
	}()
	for _, p := range []nn.Precision{nn.Float32, nn.BFloat16, nn.Float16} {
		if p != nn.Float32 && !b.NativePrecision(p) {
			continue
		}
		g := geo
		g.Precision = p
		step := func() {
			b.Conv2d(g, x, w, nil, y, nil)
			b.Conv2dBackward(g, x, w, dy, dx, dw, nil, nil)
		}
		step() // warm up (cuBLAS heuristics, pages on the device)
		if err := b.Synchronize(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		const reps = 5
		for range reps {
			step()
		}
		if err := b.Synchronize(); err != nil { // the operations are queued
			t.Fatal(err)
		}
		t.Logf("%s: conv %dx%dx%dx%d 3x3 -> %d, forward+backward in %v: %.2f ms", b.Name(), geo.N, geo.C, geo.H, geo.W, geo.K,
			p, float64(time.Since(start).Microseconds())/1000/reps)
	}
}

// toyData: images of random pixels with one box each.
type toyData struct{ samples []data.Sample }

func newToyData(n, size int, seed int64) *toyData {
	rng := rand.New(rand.NewSource(seed))
	d := &toyData{}
	for i := 0; i < n; i++ {
		img := image.NewRGBA(image.Rect(0, 0, size, size))
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				img.Set(x, y, color.RGBA{uint8(rng.Intn(256)), uint8(rng.Intn(256)), uint8(rng.Intn(256)), 255})
			}
		}
		x1, y1 := rng.Float32()*float32(size)/2, rng.Float32()*float32(size)/2
		bx := box.Box{X1: x1, Y1: y1, X2: x1 + 1 + rng.Float32()*float32(size)/2, Y2: y1 + 1 + rng.Float32()*float32(size)/2}
		d.samples = append(d.samples, data.Sample{ID: fmt.Sprint(i), Image: img, Width: size, Height: size,
			Boxes: []box.Box{bx}, Labels: []int{1}})
	}
	return d
}

func (d *toyData) Len() int                          { return len(d.samples) }
func (d *toyData) Sample(i int) (data.Sample, error) { return d.samples[i], nil }
func (d *toyData) Classes() []string                 { return []string{data.Background, "a"} }

// convNet regresses the normalised box from the pixels through a 3x3
// convolution, a ReLU and a linear layer, on backend be, honouring
// autocast; it reports be so the trainer runs SGD and the scaler there.
type convNet struct {
	conv *nn.Conv2d
	fc   *nn.Linear
	be   nn.Backend
	prec nn.Precision
	size int
}

func newConvNet(t testing.TB, be nn.Backend, size int) *convNet {
	rng := rand.New(rand.NewSource(5))
	conv, err := nn.NewConv2d("conv", 3, 4, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := nn.NewLinear("fc", 4*size*size, 4, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	return &convNet{conv: conv, fc: fc, be: be, size: size}
}

func (m *convNet) Params() []*nn.Param             { return append(m.conv.Params(), m.fc.Params()...) }
func (m *convNet) Backend() nn.Backend             { return m.be }
func (m *convNet) SetAutocast(p nn.Precision) bool { m.prec = p; return true }

type convNetLoss struct {
	g      *nn.Graph
	total  *nn.Var
	values map[string]float32
}

func (l *convNetLoss) Values() map[string]float32 { return l.values }
func (l *convNetLoss) Backward(scale float32) error {
	defer l.g.Release()
	return l.g.Backward(nn.MulScalar(l.g, l.total, scale))
}

func (m *convNet) Loss(_ context.Context, b data.Batch) (train.Loss, error) {
	imgs, err := b.Images()
	if err != nil {
		return nil, err
	}
	n, in := len(imgs), imgs[0].Len()
	x := tensor.New(n, 3, m.size, m.size)
	y := tensor.New(n, 4)
	for i, img := range imgs {
		copy(x.Data()[i*in:], img.Data())
		s := b.Samples[i]
		bx, fw := s.Boxes[0], float32(s.Width)
		copy(y.Data()[i*4:], []float32{-bx.X1 / fw, -bx.Y1 / fw, -bx.X2 / fw, -bx.Y2 / fw})
	}
	g := nn.NewGraph().WithBackend(m.be).WithAutocast(m.prec)
	h, err := m.conv.Forward(g, g.Input(x))
	if err != nil {
		return nil, err
	}
	flat, err := nn.Reshape(g, nn.ReLU(g, h), n, 4*m.size*m.size)
	if err != nil {
		return nil, err
	}
	out, err := m.fc.Forward(g, flat)
	if err != nil {
		return nil, err
	}
	r, err := nn.Add(g, out, g.Input(y))
	if err != nil {
		return nil, err
	}
	sq, err := nn.Mul(g, r, r)
	if err != nil {
		return nil, err
	}
	total := nn.MulScalar(g, nn.Sum(g, sq), 1/float32(n))
	return &convNetLoss{g: g, total: total, values: map[string]float32{"loss": total.Value.Data()[0]}}, nil
}

// TestHalfAMPTrainingOnFakeDevice trains the small convolutional net with
// AMP in float16 (loss scaler on) on the fake device, whose products then
// run through gemmEx, and on nn.CPU (float16 emulated): the loss curves
// agree within 1% at every step. Started with a loss scale of 2^28, the
// float16 output gradients overflow in the 16-bit conversion on the
// device: those steps are skipped and the scale halves until they fit,
// as on the CPU.
func TestHalfAMPTrainingOnFakeDevice(t *testing.T) {
	ds := newToyData(16, 8, 9)
	fit := func(be nn.Backend, scale float64) (*train.Trainer, *train.History) {
		m := newConvNet(t, be, 8)
		tr := train.New(m, train.Config{LR: 0.005, Momentum: 0.9, BatchSize: 4, AMP: true, Precision: nn.Float16, Seed: 1, Sequential: true})
		if scale != 0 {
			tr.Scaler.Scale = scale
		}
		h, err := tr.Fit(context.Background(), ds, 8)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Precision() != nn.Float16 {
			t.Fatalf("trained in %v, want float16", tr.Precision())
		}
		return tr, h
	}
	for _, scale := range []float64{0, math.Ldexp(1, 28)} {
		b := cuda.NewFakeBackend(false)
		before := b.Stats()
		trDev, hDev := fit(b, scale)
		if st := b.Stats(); st.GEMMs == before.GEMMs {
			t.Errorf("scale %v: training ran no GEMM on the fake device", scale)
		}
		trCPU, hCPU := fit(nn.CPU{}, scale)
		if len(hDev.Records) != len(hCPU.Records) || len(hDev.Records) == 0 {
			t.Fatalf("scale %v: %d steps on the device, %d on the CPU", scale, len(hDev.Records), len(hCPU.Records))
		}
		for i, r := range hDev.Records {
			c := hCPU.Records[i]
			ld, lc := float64(r.Losses["loss"]), float64(c.Losses["loss"])
			if r.Skipped != c.Skipped || r.Scale != c.Scale || math.Abs(ld-lc) > 0.01*math.Abs(lc) {
				t.Errorf("scale %v, step %d: device loss %v skipped %v scale %v; CPU %v %v %v", scale, i, ld, r.Skipped, r.Scale, lc, c.Skipped, c.Scale)
			}
		}
		first, last := hDev.Records[0].Losses["loss"], hDev.Records[len(hDev.Records)-1].Losses["loss"]
		t.Logf("scale %v: %d steps, %d skipped (CPU %d), loss %v -> %v", scale, len(hDev.Records), trDev.Scaler.Skipped, trCPU.Scaler.Skipped, first, last)
		if scale != 0 && trDev.Scaler.Skipped == 0 {
			t.Errorf("a loss scale of 2^28 skipped no float16 step")
		}
		if !(last < first/2) {
			t.Errorf("scale %v: training did not learn: %v -> %v", scale, first, last)
		}
		if err := b.Err(); err != nil {
			t.Error(err)
		}
		b.Close()
	}
}
