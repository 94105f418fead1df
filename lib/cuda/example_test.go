package cuda_test

import (
	"fmt"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
)

// A notebook cell choosing the device: use the GPU when there is one,
// else say why not and stay on the CPU.
func ExampleNewBackend() {
	b, err := cuda.NewBackend(0)
	if err != nil {
		fmt.Println("staying on the CPU:", err)
		return
	}
	defer b.Close()
	nn.SetBackend(b)
	defer nn.SetBackend(nil)
	arena := nn.NewArenaWith(b.Alloc) // graph buffers in memory host and GPU share
	_ = arena
	fmt.Println(b.Name())
}

func ExampleParseDevice() {
	for _, s := range []string{"", "cuda", "cuda:1", "gpu"} {
		kind, ordinal, err := cuda.ParseDevice(s)
		fmt.Println(kind, ordinal, err)
	}
	// Output:
	// cpu 0 <nil>
	// cuda 0 <nil>
	// cuda 1 <nil>
	//  0 cuda: device "gpu": want "cpu", "cuda" or "cuda:N"
}
