package roialign

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/allocs"
	"github.com/detlab/detlab/lib/tensor"
)

// refForward is a float64 RoIAlign written directly from torchvision's
// definition, one output element at a time (no precomputed sample tables).
func refForward(feat []float32, s Shape, rois []float32, cfg Config) []float64 {
	k := len(rois) / 5
	out := make([]float64, k*s.C*cfg.OutH*cfg.OutW)
	at := func(b, c, y, x int) float64 { return float64(feat[((b*s.C+c)*s.H+y)*s.W+x]) }
	interp := func(b, c int, y, x float64) float64 {
		if y < -1 || y > float64(s.H) || x < -1 || x > float64(s.W) {
			return 0
		}
		y, x = math.Max(y, 0), math.Max(x, 0)
		y0, x0 := int(y), int(x)
		y1, x1 := y0+1, x0+1
		if y0 >= s.H-1 {
			y0, y1, y = s.H-1, s.H-1, float64(s.H-1)
		}
		if x0 >= s.W-1 {
			x0, x1, x = s.W-1, s.W-1, float64(s.W-1)
		}
		ly, lx := y-float64(y0), x-float64(x0)
		return (1-ly)*(1-lx)*at(b, c, y0, x0) + (1-ly)*lx*at(b, c, y0, x1) + ly*(1-lx)*at(b, c, y1, x0) + ly*lx*at(b, c, y1, x1)
	}
	off := 0.0
	if cfg.Aligned {
		off = 0.5
	}
	sc := float64(cfg.SpatialScale)
	for r := 0; r < k; r++ {
		b := int(rois[r*5])
		x1, y1 := float64(rois[r*5+1])*sc-off, float64(rois[r*5+2])*sc-off
		rw, rh := float64(rois[r*5+3])*sc-off-x1, float64(rois[r*5+4])*sc-off-y1
		if !cfg.Aligned {
			rw, rh = math.Max(rw, 1), math.Max(rh, 1)
		}
		bh, bw := rh/float64(cfg.OutH), rw/float64(cfg.OutW)
		gh, gw := cfg.SamplingRatio, cfg.SamplingRatio
		if gh <= 0 {
			gh, gw = int(math.Ceil(bh)), int(math.Ceil(bw))
		}
		cnt := float64(max(gh*gw, 1))
		for c := 0; c < s.C; c++ {
			for ph := 0; ph < cfg.OutH; ph++ {
				for pw := 0; pw < cfg.OutW; pw++ {
					var v float64
					for iy := 0; iy < gh; iy++ {
						y := y1 + float64(ph)*bh + (float64(iy)+0.5)*bh/float64(gh)
						for ix := 0; ix < gw; ix++ {
							x := x1 + float64(pw)*bw + (float64(ix)+0.5)*bw/float64(gw)
							v += interp(b, c, y, x)
						}
					}
					out[((r*s.C+c)*cfg.OutH+ph)*cfg.OutW+pw] = v / cnt
				}
			}
		}
	}
	return out
}

func randData(r *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return d
}

// randRois draws k rois over an image of size imgH x imgW, some reaching
// outside it, some degenerate.
func randRois(r *rand.Rand, k, n int, imgH, imgW float32) []float32 {
	out := make([]float32, 0, k*5)
	for i := 0; i < k; i++ {
		x1 := (r.Float32()*1.4 - 0.2) * imgW
		y1 := (r.Float32()*1.4 - 0.2) * imgH
		w := r.Float32() * imgW * 0.8
		h := r.Float32() * imgH * 0.8
		if i%7 == 3 {
			w, h = 0, 0.5 // degenerate: forced to one feature pixel unless aligned
		}
		out = append(out, float32(r.Intn(n)), x1, y1, x1+w, y1+h)
	}
	return out
}

var kernelConfigs = []Config{
	{OutH: 7, OutW: 7, SamplingRatio: 2, SpatialScale: 1.0 / 32},
	{OutH: 7, OutW: 7, SamplingRatio: 2, SpatialScale: 1.0 / 32, Aligned: true},
	{OutH: 3, OutW: 5, SamplingRatio: 0, SpatialScale: 0.25},
	{OutH: 4, OutW: 2, SamplingRatio: -1, SpatialScale: 0.5, Aligned: true},
	{OutH: 2, OutW: 2, SamplingRatio: 1, SpatialScale: 1},
	{OutH: 5, OutW: 3, SamplingRatio: 3, SpatialScale: 0.125},
}

func TestForwardAgainstReference(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i, cfg := range kernelConfigs {
		t.Run(fmt.Sprintf("%d_%dx%d_s%d_aligned%v", i, cfg.OutH, cfg.OutW, cfg.SamplingRatio, cfg.Aligned), func(t *testing.T) {
			s := Shape{N: 2, C: 6, H: 9, W: 13} // C=6: the 4-channel block and the remainder
			feat := randData(r, s.numel())
			imgH, imgW := float32(s.H)/cfg.SpatialScale, float32(s.W)/cfg.SpatialScale
			rois := randRois(r, 23, s.N, imgH, imgW)
			got := make([]float32, 23*s.C*cfg.OutH*cfg.OutW)
			if err := ForwardSlice(got, feat, s, rois, cfg); err != nil {
				t.Fatal(err)
			}
			want := refForward(feat, s, rois, cfg)
			for j := range got {
				if d := math.Abs(float64(got[j]) - want[j]); d > 2e-5*(1+math.Abs(want[j])) {
					t.Fatalf("out[%d] = %v, want %v (diff %g)", j, got[j], want[j], d)
				}
			}
		})
	}
}

// TestBackwardAdjoint checks the backward kernel for every configuration:
// RoIAlign is linear in the features, so <Forward(x), g> = <x, Backward(g)>.
func TestBackwardAdjoint(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for i, cfg := range kernelConfigs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := Shape{N: 2, C: 7, H: 8, W: 11}
			x := randData(r, s.numel())
			rois := randRois(r, 17, s.N, float32(s.H)/cfg.SpatialScale, float32(s.W)/cfg.SpatialScale)
			g := randData(r, 17*s.C*cfg.OutH*cfg.OutW)
			y := make([]float32, len(g))
			if err := ForwardSlice(y, x, s, rois, cfg); err != nil {
				t.Fatal(err)
			}
			gx := make([]float32, len(x))
			if err := BackwardSlice(gx, g, s, rois, cfg); err != nil {
				t.Fatal(err)
			}
			var lhs, rhs, scale float64
			for j := range y {
				lhs += float64(y[j]) * float64(g[j])
				scale += math.Abs(float64(y[j]) * float64(g[j]))
			}
			for j := range x {
				rhs += float64(x[j]) * float64(gx[j])
			}
			if math.Abs(lhs-rhs) > 1e-5*(1+scale) {
				t.Fatalf("<F(x),g> = %v, <x,F'(g)> = %v", lhs, rhs)
			}
		})
	}
}

// TestGradientFiniteDifference perturbs feature elements and compares the
// change of sum(Forward*g) with the backward kernel (float64 reference
// forward, so the difference quotient is not drowned by float32 rounding).
// The rois' samples stay away from the clamp points (inside the map).
func TestGradientFiniteDifference(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	cfg := Config{OutH: 3, OutW: 3, SamplingRatio: 2, SpatialScale: 0.5}
	s := Shape{N: 2, C: 2, H: 6, W: 7}
	x := randData(r, s.numel())
	rois := []float32{0, 1.3, 2.1, 9.7, 8.9, 1, 3.3, 1.7, 11.1, 9.2, 0, 4.1, 4.3, 7.9, 10.3}
	k := len(rois) / 5
	g := randData(r, k*s.C*cfg.OutH*cfg.OutW)
	gx := make([]float32, len(x))
	if err := BackwardSlice(gx, g, s, rois, cfg); err != nil {
		t.Fatal(err)
	}
	loss := func(x []float32) float64 {
		var l float64
		for j, v := range refForward(x, s, rois, cfg) {
			l += v * float64(g[j])
		}
		return l
	}
	const h = 1e-2
	for j := range x {
		xp := append([]float32(nil), x...)
		xm := append([]float32(nil), x...)
		xp[j] += h
		xm[j] -= h
		fd := (loss(xp) - loss(xm)) / (float64(xp[j]) - float64(xm[j]))
		if d := math.Abs(fd - float64(gx[j])); d > 1e-4*(1+math.Abs(fd)) {
			t.Errorf("grad[%d] = %v, finite difference %v", j, gx[j], fd)
		}
	}
}

// TestBackwardDeterministic checks that the parallel backward gives the same
// bits whatever the number of goroutines.
func TestBackwardDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	cfg := Defaults(1.0 / 16)
	s := Shape{N: 2, C: 64, H: 10, W: 12}
	rois := randRois(r, 40, s.N, 160, 192)
	g := randData(r, 40*s.C*49)
	run := func(procs int) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		gx := make([]float32, s.numel())
		if err := BackwardSlice(gx, g, s, rois, cfg); err != nil {
			t.Fatal(err)
		}
		return gx
	}
	a, b := run(1), run(4)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("grad[%d]: %v with 1 goroutine, %v with 4", i, a[i], b[i])
		}
	}
}

func TestEmptyRois(t *testing.T) {
	feat := tensor.New(2, 3, 4, 5)
	rois := tensor.New(0, 5)
	out, err := Forward(feat, rois, Defaults(1))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.Shape()) != "[0 3 7 7]" {
		t.Fatalf("shape %v, want [0 3 7 7]", out.Shape())
	}
	grad, err := Backward(out, rois, feat.Shape(), Defaults(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range grad.Data() {
		if v != 0 {
			t.Fatal("non-zero gradient from no rois")
		}
	}
}

func TestBadInput(t *testing.T) {
	nan := float32(math.NaN())
	feat := tensor.New(2, 3, 4, 5)
	roi := func(v ...float32) *tensor.Tensor { return tensor.MustFromSlice(v, len(v)/5, 5) }
	good := roi(0, 1, 1, 3, 3)
	cases := []struct {
		name     string
		features *tensor.Tensor
		rois     *tensor.Tensor
		cfg      Config
		want     string
	}{
		{"batch index too large", feat, roi(2, 1, 1, 3, 3), Defaults(1), "batch index 2"},
		{"negative batch index", feat, roi(-1, 1, 1, 3, 3), Defaults(1), "batch index -1"},
		{"fractional batch index", feat, roi(0.5, 1, 1, 3, 3), Defaults(1), "batch index 0.5"},
		{"NaN coordinate", feat, roi(0, 1, nan, 3, 3), Defaults(1), "non-finite"},
		{"Inf coordinate", feat, roi(0, 1, 1, float32(math.Inf(1)), 3), Defaults(1), "non-finite"},
		{"3-D features", tensor.New(3, 4, 5), good, Defaults(1), "want 4-D"},
		{"empty features", tensor.New(2, 0, 4, 5), good, Defaults(1), "positive sizes"},
		{"rois (K,4)", feat, tensor.New(2, 4), Defaults(1), "want (K, 5)"},
		{"nil features", nil, good, Defaults(1), "features is nil"},
		{"nil rois", feat, nil, Defaults(1), "rois is nil"},
		{"zero output size", feat, good, Config{OutH: 0, OutW: 7, SpatialScale: 1}, "output size"},
		{"zero scale", feat, good, Defaults(0), "spatial scale"},
		{"NaN scale", feat, good, Defaults(nan), "spatial scale"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Forward(tc.features, tc.rois, tc.cfg)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Forward err = %v, want ErrInput mentioning %q", err, tc.want)
			}
		})
	}
	// Backward checks the output gradient's shape.
	if _, err := Backward(tensor.New(1, 3, 7, 6), good, feat.Shape(), Defaults(1)); !errors.Is(err, ErrInput) {
		t.Fatalf("Backward with a (1,3,7,6) gradient: err = %v", err)
	}
	if err := ForwardSlice(make([]float32, 5), feat.Data(), Shape{2, 3, 4, 5}, good.Data(), Defaults(1)); !errors.Is(err, ErrInput) {
		t.Fatalf("ForwardSlice with a short output: err = %v", err)
	}
	if err := BackwardSlice(make([]float32, 10), make([]float32, 147), Shape{2, 3, 4, 5}, good.Data(), Defaults(1)); !errors.Is(err, ErrInput) {
		t.Fatalf("BackwardSlice with a short gradient buffer: err = %v", err)
	}
}

func TestInferScale(t *testing.T) {
	cases := []struct {
		featH, imgH int
		want        float32
	}{
		{10, 320, 1.0 / 32},
		{10, 300, 1.0 / 32}, // 0.0333: log2 -4.91 -> -5
		{15, 320, 1.0 / 16}, // 0.0469: log2 -4.42 -> -4
		{25, 800, 1.0 / 32},
		{40, 320, 1.0 / 8},
		{320, 320, 1},
		{640, 320, 2},
	}
	for _, tc := range cases {
		got, err := InferScale(tc.featH, tc.imgH)
		if err != nil || got != tc.want {
			t.Errorf("InferScale(%d, %d) = %v, %v; want %v", tc.featH, tc.imgH, got, err, tc.want)
		}
	}
	if _, err := InferScale(0, 320); !errors.Is(err, ErrInput) {
		t.Errorf("InferScale(0, 320): err = %v", err)
	}
}

func TestMultiScaleBadInput(t *testing.T) {
	m := NewMultiScale(7, 2)
	feat := tensor.New(2, 1, 4, 4)
	if _, err := m.Forward(feat, [][]float32{{0, 0, 1, 1}}, [][2]int{{32, 32}}); !errors.Is(err, ErrInput) {
		t.Errorf("one box list for two images: err = %v", err)
	}
	if _, err := m.Forward(feat, [][]float32{{0, 0, 1}, nil}, [][2]int{{32, 32}}); !errors.Is(err, ErrInput) {
		t.Errorf("3 box values: err = %v", err)
	}
	if _, err := m.Forward(feat, [][]float32{nil, nil}, nil); !errors.Is(err, ErrInput) {
		t.Errorf("no image sizes: err = %v", err)
	}
	if _, ok := m.Scale(); ok {
		t.Error("a failed call cached a scale")
	}
}

// TestKernelsAllocateNothing checks that ForwardSlice and BackwardSlice on
// a problem large enough to split over workers run their parts as pooled
// workpool tasks: no closure or goroutine per call.
func TestKernelsAllocateNothing(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: the kernels run inline")
	}
	s := Shape{N: 1, C: 64, H: 20, W: 20}
	cfg := Config{OutH: 7, OutW: 7, SamplingRatio: 2, SpatialScale: 1}
	k := 16
	if estWork(k, s, cfg) < minParallelWork {
		t.Fatalf("problem too small to split (%d sample evaluations)", estWork(k, s, cfg))
	}
	features := make([]float32, s.N*s.C*s.H*s.W)
	rois := make([]float32, 0, 5*k)
	for i := range k {
		x := float32(i)
		rois = append(rois, 0, x, x/2, x+4, x/2+5)
	}
	out := make([]float32, k*s.C*cfg.OutH*cfg.OutW)
	grad := make([]float32, len(features))
	run := func() {
		if err := ForwardSlice(out, features, s, rois, cfg); err != nil {
			t.Fatal(err)
		}
		if err := BackwardSlice(grad, out, s, rois, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // the pools (and each processor's layout cache) fill
		run()
	}
	const calls = 20
	// Not testing.AllocsPerRun, which sets GOMAXPROCS to 1. The fewest of
	// three rounds: a collection may cost a pooled layout once, and a
	// busy machine may leave a worker's cache cold. Two per call (a
	// closure and a goroutine's) is what this guards against.
	n, _ := allocs.Fewest(3, calls, run)
	if n >= calls/2 {
		t.Errorf("%d allocations in %d forward and backward calls, want none", n, calls)
	}
}
