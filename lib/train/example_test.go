package train_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/train"
)

// A notebook's training cell: a small Faster R-CNN (ResNet18 body) on the
// built-in synthetic shapes, with AMP, accumulation, a warm-up and a step
// schedule; the history goes to CSV, JSON and TensorBoard.
func Example() {
	ds, err := data.Shapes(data.ShapesConfig{N: 4, Width: 64, Height: 64, MaxObjects: 2, MinSize: 16, MaxSize: 32})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := fasterrcnn.Defaults(data.NumClasses(ds))
	cfg.MinSize, cfg.MaxSize = 64, 64
	cfg.Anchors.Sizes = []float64{16, 32}
	cfg.RepresentationSize = 64
	model, err := fasterrcnn.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	tr := train.New(train.Detector(model), train.Config{
		LR: 0.005, Momentum: 0.9, WeightDecay: 5e-4, NoDecayNormsBiases: true,
		BatchSize: 1, AccumSteps: 2, AMP: true, ClipNorm: 10,
		Schedule: train.Warmup(train.StepLR(3, 0.1), 2, 0.001),
		Augment:  data.HFlip{P: 0.5},
		// Reporter: train.NewTerminal(), // a live progress line
	})
	hist, err := tr.Fit(context.Background(), ds, 1) // cancel the context to stop; Fit again continues
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "runs")
	defer os.RemoveAll(dir)
	f, _ := os.Create(filepath.Join(dir, "history.csv"))
	defer f.Close()
	if err := hist.WriteCSV(f); err != nil {
		fmt.Println(err)
	}
	if _, err := hist.WriteTensorBoard(dir); err != nil {
		fmt.Println(err)
	}
	if err := tr.Save(filepath.Join(dir, "ckpt.safetensors")); err != nil {
		fmt.Println(err)
	}
	fmt.Println("steps:", len(hist.Records), "epoch:", tr.Epoch)
	fmt.Println("losses:", hist.LossKeys())
	fmt.Println("lr:", hist.Records[0].LR, hist.Records[1].LR, "scale:", hist.Records[0].Scale)
	// Output:
	// steps: 2 epoch: 1
	// losses: [loss loss_box_reg loss_classifier loss_objectness loss_rpn_box_reg]
	// lr: 5e-06 0.0025025 scale: 65536
}

// Schedules are learning-rate factors by epoch and optimizer step.
func ExampleStepLR() {
	s := train.StepLR(3, 0.1)
	for epoch := 0; epoch < 7; epoch += 3 {
		fmt.Printf("epoch %d: %.3g\n", epoch, 0.005*s.Factor(epoch, 0))
	}
	// Output:
	// epoch 0: 0.005
	// epoch 3: 0.0005
	// epoch 6: 5e-05
}
