package transform_test

import (
	"testing"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// BenchmarkApply transforms one 480x640 image with torchvision's defaults
// (resized to 800x1066, padded to 800x1088).
func BenchmarkApply(b *testing.B) {
	tr, _ := transform.New(transform.Defaults())
	img := tensor.New(3, 480, 640)
	for i := range img.Data() {
		img.Data()[i] = float32(i%255) / 255
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := tr.Apply([]*tensor.Tensor{img}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
