package nn

import (
	"math/rand"
	"testing"
)

// benchConv is ResNet18's layer1 convolution (64 -> 64, 3x3, stride 1,
// pad 1) on a 56x56 map, batch 2.
func benchConv(b *testing.B) (*Conv2d, *Var, *Arena) {
	b.Helper()
	rng := rand.New(rand.NewSource(1))
	c, err := NewConv2d("c", 64, 64, 3, 1, 1, false, rng)
	if err != nil {
		b.Fatal(err)
	}
	x := randTensor(rng, 0, 2, 64, 56, 56)
	return c, &Var{Value: x}, NewArena()
}

// BenchmarkConv2dForward is the inference forward of benchConv
// (0.92 GFLOP per op).
func BenchmarkConv2dForward(b *testing.B) {
	c, x, arena := benchConv(b)
	b.ReportAllocs()
	for range b.N {
		g := NewInferenceGraph().WithArena(arena)
		if _, err := c.Forward(g, g.Input(x.Value)); err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}

// BenchmarkConv2dTrain is forward and backward (input and weight
// gradients) of benchConv: three products of 0.92 GFLOP each.
func BenchmarkConv2dTrain(b *testing.B) {
	c, x, arena := benchConv(b)
	b.ReportAllocs()
	for range b.N {
		c.Weight.ZeroGrad()
		g := NewGraph().WithArena(arena)
		xv := g.Leaf(x.Value, true)
		y, err := c.Forward(g, xv)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Backward(Sum(g, y)); err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}

// BenchmarkBatchNormReLUTrain is a train-mode BatchNorm fused with ReLU,
// forward and backward, on (2, 64, 56, 56).
func BenchmarkBatchNormReLUTrain(b *testing.B) {
	rng := rand.New(rand.NewSource(2))
	bn, err := NewBatchNorm2d("bn", 64)
	if err != nil {
		b.Fatal(err)
	}
	bn.SetMode(BNTrain)
	x := randTensor(rng, 0, 2, 64, 56, 56)
	arena := NewArena()
	b.ReportAllocs()
	for range b.N {
		g := NewGraph().WithArena(arena)
		xv := g.Leaf(x, true)
		y, err := bn.ForwardReLU(g, xv)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Backward(Sum(g, y)); err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}
