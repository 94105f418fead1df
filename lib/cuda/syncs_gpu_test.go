package cuda_test

import (
	"context"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/tensor"
)

// TestGPUSyncsPerTrainStep counts the backend's waits for the device in
// one Faster R-CNN training step (ResNet18 body, torchvision's default
// heads, two 640x480 images, Losses then Backward, after a warm-up step)
// with asynchronous operations and with every operation waiting (the
// behaviour before operations were queued), and logs both:
// scripts/gpu-check reports the line.
func TestGPUSyncsPerTrainStep(t *testing.T) {
	gpu(t)
	if testing.Short() {
		t.Skip("two Faster R-CNN training steps at 640x480")
	}
	c := fasterrcnn.Defaults(5)
	c.MinSize, c.MaxSize = 480, 640
	c.Device = "cuda:0"
	m, err := fasterrcnn.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.ReleaseDevice()
	b, ok := m.Backend().(*cuda.Backend)
	if !ok {
		t.Fatalf("model backend %T, want *cuda.Backend", m.Backend())
	}
	m.Train()
	rng := rand.New(rand.NewSource(7))
	image := func() *tensor.Tensor {
		x := tensor.New(3, 480, 640)
		for i := range x.Data() {
			x.Data()[i] = rng.Float32()
		}
		return x
	}
	target := fasterrcnn.Target{Boxes: []box.Box{{X1: 40, Y1: 45, X2: 280, Y2: 240}, {X1: 300, Y1: 60, X2: 600, Y2: 180},
		{X1: 120, Y1: 270, X2: 400, Y2: 465}}, Labels: []int{1, 2, 3}}
	images, targets := []*tensor.Tensor{image(), image()}, []fasterrcnn.Target{target, target}
	step := func() cuda.Stats {
		before := b.Stats()
		m.ZeroGrad()
		l, err := m.Losses(context.Background(), images, targets)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Backward(); err != nil {
			t.Fatal(err)
		}
		_ = l.Values()
		after := b.Stats()
		return cuda.Stats{Launches: after.Launches - before.Launches, GEMMs: after.GEMMs - before.GEMMs,
			Syncs: after.Syncs - before.Syncs}
	}
	step() // warm: the arena's buffers, the anchors
	async := step()
	was := cuda.SetSyncEach(b, true)
	each := step()
	cuda.SetSyncEach(b, was)
	t.Logf("syncs per training step (Faster R-CNN, ResNet18 body, 640x480, batch 2) on %s: %d in mode %s, %d with every operation waiting (%d kernel launches, %d GEMMs)",
		b.Name(), async.Syncs, b.Mode(), each.Syncs, async.Launches, async.GEMMs)
	if b.Mode() == "async" && async.Syncs >= each.Syncs {
		t.Errorf("asynchronous mode waits %d times a step, no fewer than sync-per-operation's %d", async.Syncs, each.Syncs)
	}
	if async.Launches != each.Launches || async.GEMMs != each.GEMMs {
		t.Errorf("the two steps did different work: %+v and %+v", async, each)
	}
}
