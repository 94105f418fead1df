package cuda_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roialign"
	"github.com/detlab/detlab/lib/tensor"
)

// roiAlignProblem is one RoIAlign call: features of shape s, rois (K, 5).
type roiAlignProblem struct {
	name string
	s    roialign.Shape
	rois []float32
	cfg  roialign.Config
}

// randRois draws k rois over an image of h x w feature pixels at scale:
// most inside, some partly or fully outside, tiny or inverted.
func randRois(rng *rand.Rand, k, n, h, w int, scale float32) []float32 {
	fw, fh := float32(w)/scale, float32(h)/scale
	u := func(lo, hi float32) float32 { return lo + rng.Float32()*(hi-lo) }
	var rois []float32
	for range k {
		b := float32(rng.Intn(n))
		switch rng.Intn(5) {
		case 0:
			rois = append(rois, b, u(-fw/2, fw/2), u(-fh/2, fh/2), u(fw/2, 1.5*fw), u(fh/2, 1.5*fh))
		case 1:
			rois = append(rois, b, u(1.2*fw, 2*fw), u(-fh, -0.5*fh), u(2*fw, 3*fw), u(-0.4*fh, 0))
		case 2:
			x, y := u(0, fw), u(0, fh)
			rois = append(rois, b, x, y, x+u(-0.5, 0.5)/scale, y+u(-0.5, 0.5)/scale)
		default:
			x1, y1 := u(0, fw), u(0, fh)
			rois = append(rois, b, x1, y1, u(x1, fw), u(y1, fh))
		}
	}
	return rois
}

// roiAlignProblems: Faster R-CNN's pooling (stride 32, 7x7, ratio 2) at
// training size with many rois and channels (work past one launch's 65535
// blocks), the adaptive ratio, aligned, and no rois.
func roiAlignProblems(large bool) []roiAlignProblem {
	rng := rand.New(rand.NewSource(31))
	frcnn := roialign.Shape{N: 2, C: 64, H: 15, W: 20}
	k := 40
	if large {
		frcnn.C, k = 512, 1024 // 25.7M outputs
	}
	p := []roiAlignProblem{
		{"faster r-cnn", frcnn, randRois(rng, k, frcnn.N, frcnn.H, frcnn.W, 1.0/32), roialign.Defaults(1.0 / 32)},
		{"adaptive aligned", roialign.Shape{N: 3, C: 5, H: 11, W: 9}, randRois(rng, 17, 3, 11, 9, 0.5),
			roialign.Config{OutH: 3, OutW: 4, SamplingRatio: 0, SpatialScale: 0.5, Aligned: true}},
		{"adaptive", roialign.Shape{N: 1, C: 3, H: 6, W: 30}, randRois(rng, 9, 1, 6, 30, 0.25),
			roialign.Config{OutH: 2, OutW: 5, SamplingRatio: -1, SpatialScale: 0.25}},
		{"ratio 3, 1-row map", roialign.Shape{N: 2, C: 2, H: 1, W: 7}, randRois(rng, 5, 2, 1, 7, 1),
			roialign.Config{OutH: 2, OutW: 2, SamplingRatio: 3, SpatialScale: 1}},
		{"no rois", roialign.Shape{N: 1, C: 4, H: 5, W: 5}, nil, roialign.Defaults(0.25)},
	}
	return p
}

// roiAlignChecks runs RoIAlignForward and RoIAlignBackward on b, with the
// operands in Go memory (staged) and in b's managed memory, and compares
// them with lib/roialign's host kernels bit for bit (the kernels use the
// host's stencils and summation order; the backward gathers without
// atomics). Then roialign.Apply on graphs over b, float32 and bfloat16
// autocast, against the same graphs on nn.CPU: values and feature
// gradients bit-identical, and the pooling ran as kernel launches.
func roiAlignChecks(t *testing.T, b *cuda.Backend, large bool) {
	t.Helper()
	rng := rand.New(rand.NewSource(32))
	managed := func(x []float32) []float32 {
		y, err := b.TryAlloc(len(x))
		if err != nil {
			t.Fatal(err)
		}
		copy(y, x)
		return y
	}
	clone := func(x []float32) []float32 { return append([]float32(nil), x...) }
	for _, p := range roiAlignProblems(large) {
		s, k := p.s, len(p.rois)/5
		x := randn(rng, s.N*s.C*s.H*s.W)
		nout := k * s.C * p.cfg.OutH * p.cfg.OutW
		dy, dx0 := randn(rng, nout), randn(rng, len(x))
		want := make([]float32, nout)
		if err := roialign.ForwardSlice(want, x, s, p.rois, p.cfg); err != nil {
			t.Fatal(err)
		}
		wantDx := clone(dx0)
		if err := roialign.BackwardSlice(wantDx, dy, s, p.rois, p.cfg); err != nil {
			t.Fatal(err)
		}
		for _, mem := range []struct {
			name string
			buf  func([]float32) []float32
		}{{"go memory", clone}, {"managed", managed}} {
			label := fmt.Sprintf("%s %+v K=%d [%s]", p.name, s, k, mem.name)
			out := mem.buf(make([]float32, nout))
			for i := range out {
				out[i] = float32(math.NaN()) // every value must be written
			}
			before := b.Stats()
			if err := b.RoIAlignForward(out, mem.buf(x), s, p.rois, p.cfg); err != nil {
				t.Fatalf("%s: RoIAlignForward: %v", label, err)
			}
			dx := mem.buf(dx0)
			if err := b.RoIAlignBackward(dx, mem.buf(dy), s, p.rois, p.cfg); err != nil {
				t.Fatalf("%s: RoIAlignBackward: %v", label, err)
			}
			syncT(t, b)
			if launched := b.Stats().Launches - before.Launches; k > 0 && launched != 4 {
				t.Errorf("%s: %d launches for forward and backward, want 4 (layout+forward, layout+backward)", label, launched)
			}
			bitsEqual(t, label+" forward", out, want)
			bitsEqual(t, label+" backward", dx, wantDx)
		}
	}
	graphRoIAlignChecks(t, b)
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// bitsEqual fails on the first values of got that differ from want (NaN
// matches NaN).
func bitsEqual(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	bad := 0
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			if bad < 3 {
				t.Errorf("%s[%d] = %v, host %v", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ from the host's", what, bad, len(want))
	}
}

// graphRoIAlignChecks: roialign.Apply on a graph over b finds b's
// RoIAlign (roialign.Backend) and gives the CPU graph's bits, with the
// activations in Go memory and in b's managed memory, in float32 and under
// bfloat16 autocast (the operands are rounded as on the host).
func graphRoIAlignChecks(t *testing.T, b *cuda.Backend) {
	t.Helper()
	rng := rand.New(rand.NewSource(33))
	s := roialign.Shape{N: 2, C: 6, H: 12, W: 16}
	cfg := roialign.Defaults(1.0 / 16)
	rois := tensor.MustFromSlice(randRois(rng, 11, s.N, s.H, s.W, cfg.SpatialScale), 11, 5)
	feat := tensor.MustFromSlice(randn(rng, s.N*s.C*s.H*s.W), s.N, s.C, s.H, s.W)
	gy := tensor.MustFromSlice(randn(rng, 11*s.C*49), 11, s.C, 7, 7)
	run := func(be nn.Backend, arena *nn.Arena, p nn.Precision) (out, grad []float32) {
		g := nn.NewGraph().WithBackend(be).WithArena(arena).WithAutocast(p)
		defer g.Release()
		f := g.Leaf(feat.Clone(), true)
		o, err := roialign.Apply(g, f, rois, cfg)
		if err != nil {
			t.Fatal(err)
		}
		prod, err := nn.Mul(g, o, g.Input(gy))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Backward(nn.Sum(g, prod)); err != nil {
			t.Fatal(err)
		}
		syncT(t, be)
		return append([]float32(nil), o.Value.Data()...), append([]float32(nil), f.Grad.Data()...)
	}
	for _, p := range []nn.Precision{nn.Float32, nn.BFloat16} {
		wantOut, wantGrad := run(nn.CPU{}, nil, p)
		for _, mem := range []struct {
			name  string
			arena *nn.Arena
		}{{"go", nil}, {"managed", nn.NewArenaWith(b.Alloc)}} {
			label := fmt.Sprintf("Apply [%v, %s memory]", p, mem.name)
			before := b.Stats()
			out, grad := run(b, mem.arena, p)
			if launched := b.Stats().Launches - before.Launches; launched < 4 {
				t.Errorf("%s: %d kernel launches, want the RoIAlign layout, forward and backward on the device", label, launched)
			}
			bitsEqual(t, label+" output", out, wantOut)
			bitsEqual(t, label+" feature gradient", grad, wantGrad)
		}
	}
}

func TestRoIAlignOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	roiAlignChecks(t, b, false)
}

// TestGPURoIAlign: the same checks on the GPU, Faster R-CNN's pooling at
// 512 channels and 1024 rois included.
func TestGPURoIAlign(t *testing.T) {
	roiAlignChecks(t, gpu(t), true)
}

// BenchmarkGPURoIAlign is Faster R-CNN's box pooling at 640x480, batch 2
// (ResNet18 body: 512 channels at stride 32, 512 sampled rois per image),
// forward and backward, features and gradients in managed memory (the
// rois are Go memory, staged, as roialign.Apply passes them). Run with
// -test.bench GPURoIAlign -test.run '^$'; it skips without a device.
func BenchmarkGPURoIAlign(b *testing.B) {
	be := gpu(b)
	rng := rand.New(rand.NewSource(34))
	s := roialign.Shape{N: 2, C: 512, H: 15, W: 20}
	cfg := roialign.Defaults(1.0 / 32)
	rois := randRois(rng, 1024, s.N, s.H, s.W, cfg.SpatialScale)
	alloc := func(n int) []float32 {
		x := be.Alloc(n)
		copy(x, randn(rng, n))
		return x
	}
	nout := 1024 * s.C * cfg.OutH * cfg.OutW
	x, dx := alloc(s.N*s.C*s.H*s.W), alloc(s.N*s.C*s.H*s.W)
	y, dy := alloc(nout), alloc(nout)
	before := be.Stats()
	b.ResetTimer()
	for range b.N {
		if err := be.RoIAlignForward(y, x, s, rois, cfg); err != nil {
			b.Fatal(err)
		}
		if err := be.RoIAlignBackward(dx, dy, s, rois, cfg); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Synchronize(); err != nil { // the operations are queued
		b.Fatal(err)
	}
	b.StopTimer()
	reportStats(b, be, before)
	for _, v := range [][]float32{x, dx, y, dy} {
		be.Free(v)
	}
}
