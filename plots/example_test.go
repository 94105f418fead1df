package plots_test

import (
	"fmt"
	"image"
	"os"
	"path/filepath"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/train"
	"github.com/detlab/detlab/plots"
)

func tempPath(name string) string {
	dir, _ := os.MkdirTemp("", "plots")
	return filepath.Join(dir, name)
}

func ExampleLosses() {
	h := &train.History{}
	for i := 0; i < 50; i++ {
		l := 1 / float32(i+1)
		h.Records = append(h.Records, train.Record{Step: i, LR: 0.005, Scale: 1,
			Losses: map[string]float32{"loss": 2 * l, "loss_classifier": l, "loss_box_reg": l}})
	}
	fig, err := plots.Losses(h) // a cell ending in fig shows it
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Save(tempPath("losses.svg")))
	// Output: <nil>
}

func ExampleCompare() {
	run := func(rate float32) *train.History {
		h := &train.History{}
		for i := 0; i < 30; i++ {
			h.Records = append(h.Records, train.Record{Step: i, Losses: map[string]float32{"loss": 1 / (1 + rate*float32(i))}})
		}
		return h
	}
	fig, err := plots.Compare([]string{"baseline", "new head"}, []*train.History{run(0.1), run(0.2)}, "loss")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Save(tempPath("compare.png")))
	// Output: <nil>
}

func ExampleDetections() {
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	det := fasterrcnn.Detections{Boxes: []box.Box{{X1: 20, Y1: 30, X2: 120, Y2: 110}}, Scores: []float32{0.92}, Labels: []int{1}}
	pic, err := plots.Detections(img, det, plots.DetectionOptions{
		Classes:  []string{"__background__", "rectangle"},
		GT:       []box.Box{{X1: 25, Y1: 28, X2: 118, Y2: 115}},
		GTLabels: []int{1},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pic, pic.Save(tempPath("detections.png")))
	// Output: plots.Image(640x480) <nil>
}

func ExampleAnchorCoverage() {
	images := []anchor.ImageBoxes{{Height: 480, Width: 640, Boxes: []box.Box{{X1: 10, Y1: 10, X2: 30, Y2: 28}, {X1: 100, Y1: 100, X2: 228, Y2: 228}}}}
	cov, err := anchor.Analyze(images, anchor.Defaults(), 32)
	if err != nil {
		fmt.Println(err)
		return
	}
	fig, err := plots.AnchorCoverage(cov)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Save(tempPath("coverage.pdf")))
	// Output: <nil>
}

func ExampleAnchors() {
	fig, err := plots.Anchors(anchor.Defaults())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Save(tempPath("anchors.png")))
	// Output: <nil>
}

func ExampleGradNorms() {
	fig, err := plots.GradNorms([]train.GradNorm{{Name: "conv1.weight", Norm: 0.02}, {Name: "rpn.head.cls_logits.weight", Norm: 1.5}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fig.Save(tempPath("gradnorms.svg")))
	// Output: <nil>
}
