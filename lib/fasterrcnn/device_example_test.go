package fasterrcnn_test

import (
	"fmt"
	"strings"

	"github.com/detlab/detlab/lib/fasterrcnn"
)

// A model runs on a GPU by one setting; without a GPU New says why, and the
// same configuration runs on the CPU.
func ExampleModel_Device() {
	cfg := fasterrcnn.Defaults(4)
	cfg.Device = "cuda:0"
	model, err := fasterrcnn.New(cfg)
	if err != nil {
		// e.g. "fasterrcnn: Device cuda:0: cuda: no NVIDIA driver (libcuda.so.1)"
		cfg.Device = "cpu"
		model, err = fasterrcnn.New(cfg)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(model.Device() == "cpu" || strings.HasPrefix(model.Device(), "cuda:"))
	model.ReleaseDevice() // frees the GPU memory of a GPU model; nothing on the CPU
	// Output: true
}
