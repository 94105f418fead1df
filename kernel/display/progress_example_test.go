package display_test

import (
	"os"

	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/lib/train"
)

// Outside a notebook the bar hands its reports to a terminal reporter; in a
// notebook the same Reporter draws an HTML bar and a loss plot in place.
func ExampleNewProgress() {
	bar := display.NewProgress("shapes")
	bar.Fallback = &train.Terminal{W: os.Stdout} // default: train.NewTerminal() on stderr
	// A trainer calls Report after every optimizer step:
	//   train.New(model, train.Config{LR: 0.01, Reporter: bar})
	bar.Report(train.Progress{Epochs: 1, Batch: 1, Batches: 2, Done: 1, Total: 2, Rate: 2, ETA: 0.5,
		Losses: map[string]float32{"loss": 1.5}, LR: 0.01, Scale: 1})
	// Output:
	// epoch 1/1 batch 1/2 step 1/2 2.00 it/s ETA 1s loss 1.5000 lr 0.01
}
