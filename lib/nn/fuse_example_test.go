package nn_test

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// ConvBN runs a convolution, its BatchNorm and a ReLU as one operation
// when the BatchNorm is a fixed affine map for the graph (eval mode on an
// inference graph, or frozen): the BatchNorm is folded into the GEMM.
func ExampleConvBN() {
	rng := rand.New(rand.NewSource(1))
	conv, _ := nn.NewConv2d("conv", 3, 8, 3, 1, 1, false, rng)
	bn, _ := nn.NewBatchNorm2d("bn", 8) // eval mode
	x := tensor.New(1, 3, 16, 16)
	for i := range x.Data() {
		x.Data()[i] = float32(rng.NormFloat64())
	}

	g := nn.NewInferenceGraph()
	fmt.Println("fused:", bn.Fusable(g))
	y, err := nn.ConvBN(g, conv, bn, g.Input(x), nil, true)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The same through the separate layers.
	h, _ := conv.Forward(g, g.Input(x))
	z, _ := bn.ForwardReLU(g, h)
	var diff float64
	for i, v := range y.Value.Data() {
		diff = max(diff, float64(v-z.Value.Data()[i]), float64(z.Value.Data()[i]-v))
	}
	fmt.Println("shape:", y.Shape(), "same as the layers:", diff < 1e-5)
	// Output:
	// fused: true
	// shape: [1 8 16 16] same as the layers: true
}
