package fasterrcnn_test

import (
	"context"
	"fmt"
	"image"
	"image/color"

	"github.com/detlab/detlab/lib/fasterrcnn"
)

// Build torchvision's Faster R-CNN with a ResNet18 body, change a few
// numbers, and detect objects in an image. The weights here are random;
// load trained ones with model.Load (see lib/weights).
func Example() {
	cfg := fasterrcnn.Defaults(3)         // 2 object classes + background
	cfg.MinSize, cfg.MaxSize = 128, 160   // small images for the example
	cfg.RepresentationSize = 64           // a narrower box head
	cfg.RPN.NMSThresh = 0.6               // change one threshold
	cfg.Anchors.Sizes = []float64{32, 64} // fewer anchor sizes
	model, err := fasterrcnn.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	img := image.NewRGBA(image.Rect(0, 0, 120, 90))
	for y := 20; y < 60; y++ {
		for x := 30; x < 90; x++ {
			img.Set(x, y, color.RGBA{R: 200, G: 40, B: 40, A: 255})
		}
	}
	det, err := model.Predict(context.Background(), img)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("anchors per location:", cfg.Anchors.NumAnchorsPerLocation())
	fmt.Println("at most 100 detections:", len(det.Boxes) <= cfg.RoI.DetectionsPerImg)
	fmt.Println("state dict has", model.StateDict().Tensors["rpn.head.conv.0.0.weight"].Shape())
	// Output:
	// anchors per location: 6
	// at most 100 detections: true
	// state dict has [512 512 3 3]
}
