package fasterrcnn

import (
	"context"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/tensor"
)

// TestBackwardScaledGivesBatchBack checks that BackwardScaled, like
// Backward, gives the transformed batch back to the model's arena (it
// kept it: every lib/train step then allocated a new batch) and keeps the
// loss values readable.
func TestBackwardScaledGivesBatchBack(t *testing.T) {
	c := Defaults(4)
	c.MinSize, c.MaxSize = 128, 128
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	m.Train()
	rng := rand.New(rand.NewSource(1))
	images := []*tensor.Tensor{randomImage(rng, 128, 128), randomImage(rng, 128, 128)}
	tg := Target{Boxes: []box.Box{{X1: 8, Y1: 12, X2: 56, Y2: 64}, {X1: 60, Y1: 16, X2: 120, Y2: 48}}, Labels: []int{1, 2}}
	targets := []Target{tg, tg}
	held := func(scaled bool) (int, map[string]float32) {
		m.SeedSampler(7)
		l, err := m.Losses(context.Background(), images, targets)
		if err != nil {
			t.Fatal(err)
		}
		before := l.Values()
		if scaled {
			err = l.BackwardScaled(0.5)
		} else {
			err = l.Backward()
		}
		if err != nil {
			t.Fatal(err)
		}
		if after := l.Values(); after["loss"] != before["loss"] || len(after) != 5 {
			t.Errorf("scaled %v: values after backward %v, before %v", scaled, after, before)
		}
		return m.arena.Held(), before
	}
	held(false) // warm-up: the arena fills
	want, _ := held(false)
	got, _ := held(true)
	batch := 2 * 3 * 128 * 128
	if got < want-batch/2 {
		t.Errorf("after BackwardScaled the arena holds %d values, after Backward %d: the %d-value batch was not given back", got, want, batch)
	}
}
