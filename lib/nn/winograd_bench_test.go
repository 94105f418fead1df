package nn

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWinogradLayers times ResNet18's stride-1 3x3 convolutions at
// 224x224 batch 1 (with a fused BatchNorm scale, shift and ReLU) on the
// im2col path and with F(2,3) and F(4,3); then the deeper layers at the
// Faster R-CNN input 320x320 (20x20, 10x10) and at batches 2 and 4, which
// test winogradFor's rule off the shapes it was first measured on, and
// the first two layers at 320x320 (80x80, 40x40).
func BenchmarkWinogradLayers(b *testing.B) {
	for _, l := range []struct{ n, c, hw int }{{1, 64, 56}, {1, 128, 28}, {1, 256, 14}, {1, 512, 7}, {1, 256, 20}, {1, 512, 10},
		{2, 256, 14}, {4, 256, 14}, {4, 512, 7}, {1, 64, 80}, {1, 128, 40}} {
		tc := wgCase{l.n, l.c, l.hw, l.hw, l.c, true, true, false, true}
		geo, p, x, ep := tc.build(1)
		y := make([]float32, geo.N*geo.K*geo.OH*geo.OW)
		rs := &reuseScratch{}
		for _, alg := range []struct {
			name string
			pl   *winogradPlan
		}{{"im2col", nil}, {"F2", wgF2}, {"F4", wgF4}} {
			b.Run(fmt.Sprintf("n%d-c%d-%dx%d/%s", l.n, l.c, l.hw, l.hw, alg.name), func(b *testing.B) {
				b.ReportAllocs()
				flops := 2 * float64(geo.N*geo.K*geo.C*9*geo.OH*geo.OW)
				g2 := geo
				g2.forwardOnly = false
				if alg.pl != nil { // transform the weights outside the timing
					conv2dWinograd(alg.pl, geo, x, p.Value.Data(), ep, y, rs)
				}
				c0 := cpuTime()
				for b.Loop() {
					if alg.pl == nil {
						CPU{}.Conv2dFused(g2, x, p.Value.Data(), ep, y, rs)
					} else {
						conv2dWinograd(alg.pl, geo, x, p.Value.Data(), ep, y, rs)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-us/op")
			})
		}
	}
}

// reuseScratch keeps returned buffers, as a graph's arena does (no
// clearing between uses), and like it lends the smallest one that fits:
// the first that fits let a small request take a large buffer and the next
// large one allocate, so a change in the order of a kernel's requests
// showed up as tens of KiB allocated per call and a 20-40% slower
// benchmark.
type reuseScratch struct{ free [][]float32 }

func (r *reuseScratch) Get(n int) []float32 {
	best := -1
	for i, b := range r.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(r.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := r.free[best]
		r.free = append(r.free[:best], r.free[best+1:]...)
		return b[:n]
	}
	return make([]float32, n)
}

func (r *reuseScratch) Put(b []float32) { r.free = append(r.free, b) }
