package cuda_test

import (
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/tensor"
)

// Benchmarks for the GPU session (go test -c; run with -test.bench GPU
// -test.run '^$'); they skip without a device. Besides time per op they
// report the backend's kernel launches, GEMMs and bytes of Go memory
// staged per op, which show where a slow step spends its time.

func reportStats(b *testing.B, be *cuda.Backend, before cuda.Stats) {
	after := be.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(after.Launches-before.Launches)/n, "launches/op")
	b.ReportMetric(float64(after.GEMMs-before.GEMMs)/n, "gemms/op")
	b.ReportMetric(float64(after.StagedBytes-before.StagedBytes)/n/(1<<20), "staged-MiB/op")
	inUse, peak := be.MemoryStats()
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	_ = inUse
}

// BenchmarkGPUConv3x3 is one 3x3 convolution, forward and backward, with
// every operand in managed memory (kernels and cuBLAS only).
func BenchmarkGPUConv3x3(b *testing.B) {
	be := gpu(b)
	geo := convGeom(8, 64, 56, 56, 64, 3, 1, 1)
	rng := rand.New(rand.NewSource(1))
	alloc := func(n int) []float32 {
		x := be.Alloc(n)
		copy(x, randn(rng, n))
		return x
	}
	x, w, bias := alloc(geo.N*geo.C*geo.H*geo.W), alloc(geo.K*geo.C*9), alloc(geo.K)
	y, dy := alloc(geo.N*geo.K*geo.OH*geo.OW), alloc(geo.N*geo.K*geo.OH*geo.OW)
	dx, dw, db := alloc(len(x)), alloc(len(w)), alloc(geo.K)
	before := be.Stats()
	b.ResetTimer()
	for range b.N {
		be.Conv2d(geo, x, w, bias, y, nil)
		be.Conv2dBackward(geo, x, w, dy, dx, dw, db, nil)
	}
	if err := be.Synchronize(); err != nil { // the operations are queued
		b.Fatal(err)
	}
	b.StopTimer()
	reportStats(b, be, before)
	for _, s := range [][]float32{x, w, bias, y, dy, dx, dw, db} {
		be.Free(s)
	}
}

// BenchmarkGPUResNet18TrainStep is a ResNet18 forward and backward (train
// mode, batch 2, 224x224) with parameters, gradients and graph buffers in
// the backend's managed memory (as a model on a GPU has them): the kernels
// plus the host-side operations (ReLU, residual sums, losses) over memory
// the GPU shares.
func BenchmarkGPUResNet18TrainStep(b *testing.B) {
	be := gpu(b)
	m, err := resnet.New18(1000, rand.New(rand.NewSource(1)))
	if err != nil {
		b.Fatal(err)
	}
	m.SetTraining(true)
	for _, p := range m.Params() {
		v := be.Alloc(p.Value.Len())
		copy(v, p.Value.Data())
		*p.Value = *tensor.MustFromSlice(v, p.Value.Shape()...)
		p.Grad = tensor.MustFromSlice(be.Alloc(p.Value.Len()), p.Value.Shape()...)
	}
	x := tensor.MustFromSlice(randn(rand.New(rand.NewSource(2)), 2*3*224*224), 2, 3, 224, 224)
	arena := nn.NewArenaWith(be.Alloc)
	step := func() {
		g := nn.NewGraph().WithBackend(be).WithArena(arena)
		logits, err := m.Forward(g, g.Input(x))
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Backward(nn.Sum(g, logits)); err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
	for _, prefetch := range []bool{false, true} {
		name := "fault-in"
		if prefetch {
			name = "prefetch"
		}
		b.Run(name, func(b *testing.B) {
			be.SetPrefetchOperands(prefetch)
			defer be.SetPrefetchOperands(false)
			step() // warm the arena
			before := be.Stats()
			b.ResetTimer()
			for range b.N {
				step()
			}
			if err := be.Synchronize(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			reportStats(b, be, before)
		})
	}
}
