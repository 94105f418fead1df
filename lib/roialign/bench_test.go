package roialign

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/compute"
)

// BenchmarkForwardBackward runs RoIAlign at Faster R-CNN training sizes:
// features (2, 512, 20, 25) from a 640x800 batch at stride 32, 512 rois per
// image, 7x7, sampling ratio 2.
func BenchmarkForwardBackward(b *testing.B) {
	fmt.Printf("detlab-cpu: %s\n", compute.CPU())
	r := rand.New(rand.NewSource(1))
	s := Shape{N: 2, C: 512, H: 20, W: 25}
	cfg := Defaults(1.0 / 32)
	const k = 1024
	feat := randData(r, s.numel())
	rois := make([]float32, 0, k*5)
	for i := 0; i < k; i++ {
		x1, y1 := r.Float32()*700, r.Float32()*540
		rois = append(rois, float32(i*s.N/k), x1, y1, x1+16+r.Float32()*300, y1+16+r.Float32()*300)
	}
	out := make([]float32, k*s.C*49)
	grad := make([]float32, s.numel())
	b.Run("forward", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := ForwardSlice(out, feat, s, rois, cfg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
	})
	b.Run("backward", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			clear(grad)
			if err := BackwardSlice(grad, out, s, rois, cfg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
	})
}
