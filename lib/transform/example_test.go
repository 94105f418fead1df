package transform_test

import (
	"fmt"
	"image"
	"image/color"
	"log"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// Prepare two images for a detector and map a detection back.
func Example() {
	cfg := transform.Defaults() // torchvision: 800/1333, ImageNet mean/std, pad to 32
	cfg.MinSize, cfg.MaxSize = []int{320}, 480
	t, err := transform.New(cfg)
	if err != nil {
		log.Fatal(err)
	}

	photo := image.NewRGBA(image.Rect(0, 0, 226, 150)) // 226 wide, 150 high
	photo.Set(10, 10, color.RGBA{200, 100, 50, 255})
	img0, _ := transform.FromImage(photo)
	img1 := tensor.New(3, 500, 200) // already (C,H,W) in [0,1]

	boxes := []*tensor.Tensor{
		tensor.MustFromSlice([]float32{10, 20, 110, 140}, 1, 4),
		tensor.New(0, 4), // no objects
	}
	batch, resized, err := t.Apply([]*tensor.Tensor{img0, img1}, boxes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("batch", batch.Tensor.Shape())
	fmt.Println("sizes", batch.ImageSizes, "from", batch.OriginalSizes)
	fmt.Printf("scales %.8g\n", batch.Scales)
	fmt.Println("box", resized[0].Data())

	// A detection in resized pixels, back in the original image.
	det := []*tensor.Tensor{tensor.MustFromSlice([]float32{0, 0, 479, 318}, 1, 4), nil}
	orig, _ := batch.Postprocess(det)
	fmt.Println("original", orig[0].Data())
	// Output:
	// batch [2 3 480 480]
	// sizes [318x479 480x192] from [150x226 500x200]
	// scales [2.1238937 0.96000004]
	// box [21.194689 42.399998 233.14159 296.8]
	// original [0 0 226 150]
}
