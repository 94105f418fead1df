package fasterrcnn

import (
	"bufio"
	"context"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/tensor"
)

// peakRSSMB reads the process's peak resident set size (VmHWM) in MiB, or
// -1 where /proc is unavailable.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

// benchModel is torchvision's default Faster R-CNN with the ResNet18 body
// (representation size 1024, 15 anchors) on 320x320 images.
func benchModel(b *testing.B) *Model {
	c := Defaults(5)
	c.MinSize, c.MaxSize = 320, 320
	m, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// trainStepFixture is a batch of two random h x w images with three boxes
// each (the bench's targets, scaled) and the step that trains on it.
func trainStepFixture(tb testing.TB, m *Model, h, w int) func() {
	rng := rand.New(rand.NewSource(1))
	images := []*tensor.Tensor{randomImage(rng, h, w), randomImage(rng, h, w)}
	sx, sy := float32(w)/320, float32(h)/320
	t := Target{Boxes: []box.Box{
		{X1: 20 * sx, Y1: 30 * sy, X2: 140 * sx, Y2: 160 * sy},
		{X1: 150 * sx, Y1: 40 * sy, X2: 300 * sx, Y2: 120 * sy},
		{X1: 60 * sx, Y1: 180 * sy, X2: 200 * sx, Y2: 310 * sy},
	}, Labels: []int{1, 2, 3}}
	targets := []Target{t, t}
	ctx := context.Background()
	return func() {
		l, err := m.Losses(ctx, images, targets)
		if err != nil {
			tb.Fatal(err)
		}
		m.ZeroGrad()
		if err := l.Backward(); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkTrainStep320 is one training step's forward and backward pass
// (Losses + Backward) on a batch of two 320x320 images with three boxes
// each, BatchNorm in train mode, after one warm-up step: B/op and
// allocs/op are the steady state's.
func BenchmarkTrainStep320(b *testing.B) {
	m := benchModel(b)
	m.Train()
	step := trainStepFixture(b, m, 320, 320)
	step()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		step()
	}
	b.ReportMetric(peakRSSMB(), "peakRSS-MiB")
}

// BenchmarkPredict320 is inference on one 320x320 image.
func BenchmarkPredict320(b *testing.B) {
	m := benchModel(b)
	img := randomImage(rand.New(rand.NewSource(2)), 320, 320)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := m.PredictTensors(ctx, []*tensor.Tensor{img}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(peakRSSMB(), "peakRSS-MiB")
}
