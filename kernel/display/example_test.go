package display_test

import (
	"fmt"

	"github.com/detlab/detlab/kernel/display"
)

// printer is a Sink that prints what it receives, standing in for the kernel.
type printer struct{}

func (printer) Display(d display.Data) {
	fmt.Println("display:", d.MIME["text/plain"], d.DisplayID != "")
}
func (printer) Update(d display.Data) { fmt.Println("update:", d.MIME["text/plain"]) }
func (printer) Clear(wait bool)       { fmt.Println("clear") }

// A progress display shown once and updated in place.
func Example() {
	display.SetSink(printer{}) // the kernel does this for every cell
	defer display.SetSink(nil)

	display.HTML("<b>training</b>")
	id := display.NewID()
	display.ShowID(id, "epoch 1/3")
	for e := 2; e <= 3; e++ {
		display.Update(id, fmt.Sprintf("epoch %d/3", e))
	}
	// Output:
	// display: <b>training</b> false
	// display: epoch 1/3 true
	// update: epoch 2/3
	// update: epoch 3/3
}
