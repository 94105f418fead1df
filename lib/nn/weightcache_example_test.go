package nn_test

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
)

// Writing a parameter's values yourself: call MarkChanged afterwards, so
// the values the library derived from them (packed, converted, Winograd
// weights, cached per parameter) are rebuilt at the next forward.
func ExampleParam_MarkChanged() {
	conv, err := nn.NewConv2d("conv", 16, 16, 3, 1, 1, false, rand.New(rand.NewSource(1)))
	if err != nil {
		fmt.Println(err)
		return
	}
	before := conv.Weight.Version()
	w := conv.Weight.Value.Data()
	w[0] = 0.5 // a hand edit
	conv.Weight.MarkChanged()
	fmt.Println("version moved:", conv.Weight.Version() != before)

	// Through the state dict: mark the keys written (none: all of them).
	sd := nn.State(conv, "conv.")
	sd.Tensors["conv.weight"].Data()[1] = 0.25
	v := conv.Weight.Version()
	sd.MarkChanged("conv.weight")
	fmt.Println("version moved:", conv.Weight.Version() != v)
	// Output:
	// version moved: true
	// version moved: true
}
