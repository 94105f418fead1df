package nn_test

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// A convolution trained for one step: forward on a recording graph, a
// scalar loss, Backward, then the parameter's gradient is ready.
func Example() {
	rng := rand.New(rand.NewSource(1))
	conv, _ := nn.NewConv2d("conv", 3, 8, 3, 1, 1, true, rng)
	shape, _ := conv.OutputShape([]int{1, 3, 16, 16})
	fmt.Println("output shape:", shape)

	g := nn.NewGraph()
	y, _ := conv.Forward(g, g.Input(tensor.New(1, 3, 16, 16)))
	loss := nn.Mean(g, y)
	if err := g.Backward(loss); err != nil {
		fmt.Println(err)
	}
	fmt.Println("bias grad:", conv.Bias.Grad.Data()[0])
	// Output:
	// output shape: [1 8 16 16]
	// bias grad: 0.125
}

// Graph.Op adds a differentiable operation defined outside the package:
// here y = x^2, whose backward adds 2*x*dy to the input's gradient.
func ExampleGraph_Op() {
	g := nn.NewGraph()
	x := g.Leaf(tensor.MustFromSlice([]float32{1, 2, 3}, 3), true)

	out := g.NewTensor(x.Shape()...)
	for i, v := range x.Value.Data() {
		out.Data()[i] = v * v
	}
	y := g.Op(out, []*nn.Var{x}, func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		if gin[0] == nil {
			return // x needs no gradient
		}
		for i, d := range gy.Data() {
			gin[0].Data()[i] += 2 * x.Value.Data()[i] * d
		}
	})
	if err := g.Backward(nn.Sum(g, y)); err != nil {
		fmt.Println(err)
	}
	fmt.Println(x.Grad.Data())
	// Output: [2 4 6]
}
