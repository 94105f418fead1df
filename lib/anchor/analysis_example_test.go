package anchor_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
)

func ExampleAnalyze() {
	// One 480x640 image with a small and a large object, in original pixels.
	orig := []anchor.ImageBoxes{{Height: 480, Width: 640, Labels: []int{1, 2},
		Boxes: []box.Box{{X1: 100, Y1: 100, X2: 124, Y2: 122}, {X1: 300, Y1: 200, X2: 420, Y2: 310}}}}
	// As the model sees them with MinSize 320, MaxSize 427.
	ims, err := anchor.Resize(orig, 320, 427)
	if err != nil {
		fmt.Println(err)
		return
	}
	def, _ := anchor.Analyze(ims, anchor.Defaults(), 32)
	small, _ := anchor.Analyze(ims, anchor.Config{Sizes: []float64{16, 32, 64, 128}, AspectRatios: []float64{0.5, 1, 2}}, 32)
	fmt.Printf("small box: %.2f vs %.2f (the 32-px grid, not the size, limits it)\n", def.BestIoU[0], small.BestIoU[0])
	c := anchor.Compare(def, small)
	c.NameA, c.NameB = "default", "with 16"
	fmt.Println(c)
	// Output:
	// small box: 0.17 vs 0.17 (the 32-px grid, not the size, limits it)
	// IoU>=0.7: default 0.0% -> with 16 0.0% (+0.0 pp); IoU>=0.5: 0.0% -> 0.0% (+0.0 pp); 2 vs 2 boxes; default: sizes (32, 64, 128, 256, 512) x ratios (0.5, 1, 2), with 16: sizes (16, 32, 64, 128) x ratios (0.5, 1, 2)
}

func ExampleSuggest() {
	var bs []box.Box
	for i := 0; i < 40; i++ {
		s := float32(12 + i%4*20)
		bs = append(bs, box.Box{X1: 0, Y1: 0, X2: s, Y2: s * float32(1+i%2)})
	}
	cfg, cl, err := anchor.Suggest([]anchor.ImageBoxes{{Height: 320, Width: 320, Boxes: bs}}, 2, 2, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(cfg.Sizes), len(cfg.AspectRatios), len(cl.Centroids))
	// Output: 2 2 4
}
