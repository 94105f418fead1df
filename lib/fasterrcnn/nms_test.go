package fasterrcnn

import (
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// nmsCPU is the CPU backend that also offers NMS (box.NMSBackend, the
// masks computed in Go from box.NMSPairSuppressed), counting its calls:
// a stand-in for lib/cuda's Backend.
type nmsCPU struct {
	nn.CPU
	calls int
}

func (b *nmsCPU) NMSMasks(flat []float32, cut float32, masks []uint64) error {
	b.calls++
	n := len(flat) / 4
	words := (n + 63) / 64
	at := func(i int) box.Box { return box.New(flat[4*i], flat[4*i+1], flat[4*i+2], flat[4*i+3]) }
	clear(masks)
	for i := range n {
		for j := i + 1; j < n; j++ {
			if box.NMSPairSuppressed(at(i), at(j), cut) {
				masks[i*words+j/64] |= 1 << (j % 64)
			}
		}
	}
	return nil
}

// TestNMSOnModelBackend: when the model's backend offers NMS, the
// proposals (training and evaluation) and the detections run their NMS
// on it, with the same results as on the host.
func TestNMSOnModelBackend(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	images := []*tensor.Tensor{randomImage(rng, 60, 80), randomImage(rng, 120, 70)}
	targets := []Target{
		{Boxes: []box.Box{box.New(5, 5, 40, 30)}, Labels: []int{1}},
		{Boxes: []box.Box{box.New(10, 20, 60, 90), box.New(0, 0, 20, 20)}, Labels: []int{2, 1}},
	}
	// A fresh model per run: the same weights and the same sampling draws.
	run := func() (string, string) {
		m, err := New(tinyConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		dets, err := m.PredictTensors(context.Background(), images)
		if err != nil {
			t.Fatal(err)
		}
		m.Train()
		losses, err := m.Losses(context.Background(), images, targets)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(dets), fmt.Sprint(losses.Values())
	}
	wantDets, wantLosses := run()
	be := &nmsCPU{}
	nn.SetBackend(be)
	defer nn.SetBackend(nil)
	gotDets, gotLosses := run()
	// Proposals per image in evaluation and training, and detections per
	// image (one NMS each while they have at least two candidates).
	if be.calls < 4 {
		t.Errorf("the backend ran %d NMS calls", be.calls)
	}
	t.Logf("%d NMS calls on the backend; detections %.200s", be.calls, gotDets)
	if gotDets != wantDets {
		t.Errorf("detections with NMS on the backend:\n%s\nwant\n%s", gotDets, wantDets)
	}
	if gotLosses != wantLosses {
		t.Errorf("losses with NMS on the backend: %s, want %s", gotLosses, wantLosses)
	}
}
