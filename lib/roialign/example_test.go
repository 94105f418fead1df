package roialign_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/roialign"
	"github.com/detlab/detlab/lib/tensor"
)

// Pool one 2x2 region of a 1-channel 4x4 feature map (stride 1) to 2x2.
func ExampleForward() {
	features := tensor.MustFromSlice([]float32{
		0, 1, 2, 3,
		4, 5, 6, 7,
		8, 9, 10, 11,
		12, 13, 14, 15,
	}, 1, 1, 4, 4)
	rois := tensor.MustFromSlice([]float32{0, 1, 1, 3, 3}, 1, 5) // [batch, x1, y1, x2, y2]
	cfg := roialign.Config{OutH: 2, OutW: 2, SamplingRatio: 2, SpatialScale: 1}
	out, err := roialign.Forward(features, rois, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Shape(), out.Data())

	// The gradient of sum(out) with respect to the features.
	ones := tensor.MustFromSlice([]float32{1, 1, 1, 1}, 1, 1, 2, 2)
	grad, _ := roialign.Backward(ones, rois, features.Shape(), cfg)
	fmt.Println(grad.Data())
	// Output:
	// [1 1 2 2] [7.5 8.5 11.5 12.5]
	// [0 0 0 0 0 0.25 0.5 0.25 0 0.5 1 0.5 0 0.25 0.5 0.25]
}

// MultiScaleRoIAlign infers the scale (feature height / image height,
// rounded to a power of 2) on first use and keeps it.
func ExampleMultiScale() {
	features := tensor.New(1, 256, 10, 15) // a 320x480 image at stride 32
	m := roialign.NewMultiScale(7, 2)
	out, err := m.Forward(features, [][]float32{{0, 0, 100, 100, 50, 60, 300, 200}}, [][2]int{{320, 480}})
	if err != nil {
		fmt.Println(err)
		return
	}
	scale, _ := m.Scale()
	fmt.Println(out.Shape(), scale)
	// Output: [2 256 7 7] 0.03125
}

// Bad input gets an error naming the problem.
func ExampleCheckRois() {
	_, err := roialign.CheckRois([]float32{3, 0, 0, 10, 10}, 2)
	fmt.Println(err)
	// Output: roialign: bad input: roi 0 has batch index 3, want an integer in [0, 2)
}
