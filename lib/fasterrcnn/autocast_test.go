package fasterrcnn

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// TestAutocastChangesTrainingPrecision checks that SetAutocast reaches the
// training graph: bf16 losses differ from float32 ones, but only by bf16
// rounding, and Float32 restores the exact float32 result.
func TestAutocastChangesTrainingPrecision(t *testing.T) {
	m, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	m.Train()
	rng := rand.New(rand.NewSource(3))
	images := []*tensor.Tensor{randomImage(rng, 64, 80), randomImage(rng, 72, 64)}
	targets := []Target{
		{Boxes: []box.Box{box.New(4, 6, 40, 50)}, Labels: []int{1}},
		{Boxes: []box.Box{box.New(10, 10, 30, 60), box.New(30, 5, 60, 30)}, Labels: []int{2, 1}},
	}
	loss := func(p nn.Precision) float64 {
		m.SetAutocast(p)
		m.SeedSampler(1)
		l, err := m.Losses(context.Background(), images, targets)
		if err != nil {
			t.Fatal(err)
		}
		return float64(l.Values()["loss"])
	}
	f32 := loss(nn.Float32)
	bf16 := loss(nn.BFloat16)
	again := loss(nn.Float32)
	if f32 != again {
		t.Errorf("float32 loss %v after autocast off, want %v", again, f32)
	}
	if m.Autocast() != nn.Float32 {
		t.Errorf("Autocast() = %v after SetAutocast(nn.Float32)", m.Autocast())
	}
	if bf16 == f32 {
		t.Errorf("bf16 autocast loss %v equals the float32 loss: autocast did not reach the graph", bf16)
	}
	if rel := math.Abs(bf16-f32) / math.Abs(f32); rel > 0.05 {
		t.Errorf("bf16 loss %v vs float32 %v: relative difference %.3g > 0.05", bf16, f32, rel)
	}
}
