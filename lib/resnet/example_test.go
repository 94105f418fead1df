package resnet_test

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/tensor"
)

// Build ResNet18, run it on a random image and print the logits' shape.
func Example() {
	rng := rand.New(rand.NewSource(0))
	model, err := resnet.New18(1000, rng)
	if err != nil {
		fmt.Println(err)
		return
	}
	x := tensor.New(1, 3, 224, 224)
	for i := range x.Data() {
		x.Data()[i] = float32(rng.NormFloat64())
	}
	g := nn.NewInferenceGraph()
	logits, err := model.Forward(g, g.Input(x))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(logits.Shape())
	// Output: [1 1000]
}

// The detection body: its output map's shape is known before running.
func ExampleBody() {
	body, err := resnet.NewBody(resnet.DefaultBodyConfig(), rand.New(rand.NewSource(0)))
	if err != nil {
		fmt.Println(err)
		return
	}
	shape, _ := body.OutputShape([]int{2, 3, 320, 480})
	fmt.Println(shape, body.StateDict().Keys[0])
	// Output: [2 512 10 15] backbone.0.weight
}
