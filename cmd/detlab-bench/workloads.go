package main

import (
	"context"
	"fmt"
	"math/rand"
	"sync/atomic"
	"time"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/roialign"
	"github.com/detlab/detlab/lib/tensor"
)

// workload is one benchmark case. setup builds everything once and returns
// the function timed per run.
type workload struct {
	name        string
	desc        string
	runs, quick int // timed runs (full, -quick)
	setup       func() (func() error, error)
	// collect runs runtime.GC, untimed, before each timed run, so that
	// the memory the previous run freed is reused as PyTorch's allocator
	// reuses freed blocks at once. Without it a short workload whose
	// runs never trigger a collection writes to fresh pages every run,
	// and the first touch of a page costs 15-40 us on the project's VMs:
	// that is what the "-fresh" rows measure.
	collect bool
}

// workloads lists the cases in table order; torch_bench.py implements the
// same names.
var workloads = []workload{
	{"resnet18-fwd-224-b1", "ResNet18 forward, eval, 224x224, batch 1", 15, 5, resnetForward(nn.Float32), false},
	{"resnet18-fwd-224-b1-bf16", "the same under bfloat16 autocast", 9, 3, resnetForward(nn.BFloat16), false},
	{"resnet18-train-224-b2", "ResNet18 train step (fwd+bwd), 224x224, batch 2", 7, 3, resnetTrain, false},
	{"frcnn-train-320-b2", "Faster R-CNN R18 train step, 320x320, batch 2", 5, 2, frcnnTrain(320, 320), false},
	{"frcnn-train-320-b2-bf16", "the same under bfloat16 autocast", 5, 2, frcnnTrainAt(320, 320, nn.BFloat16), false},
	{"frcnn-infer-320-b1", "Faster R-CNN R18 inference, 320x320, batch 1", 7, 3, frcnnInfer(320, 320), false},
	{"frcnn-train-640x480-b2", "Faster R-CNN R18 train step, 640x480, batch 2", 3, 1, frcnnTrain(480, 640), false},
	{"frcnn-infer-640x480-b1", "Faster R-CNN R18 inference, 640x480, batch 1", 5, 2, frcnnInfer(480, 640), false},
	{"roialign-fb-train", "RoIAlign fwd+bwd, feats 2x512x10x10, 1024 rois, 7x7 s2", 15, 5, roiAlignFB, false},
	{"nms-2000", "NMS of 2000 boxes, IoU 0.7", 25, 9, nms2000, false},
	{"anchors-640x480", "anchor generation for 640x480 (15x20 x 15), freed memory reused", 25, 9, anchors640, true},
	{"anchors-640x480-fresh", "the same writing fresh memory every run (first-touch page faults)", 25, 9, anchors640, false},
}

// counting wraps a Backend and counts the floating-point operations of its
// matrix products and convolutions (2 per multiply-add).
type counting struct {
	nn.Backend
	flops  atomic.Int64
	layers *layerTimes // -layers: per-geometry times of Conv2dFused
}

func (c *counting) Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	c.flops.Add(int64(2 * m * n * k))
	c.Backend.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

// NativePrecision and GemmPrecision pass nn.PrecisionBackend through, so
// layers under autocast see whether the wrapped backend computes natively.
func (c *counting) NativePrecision(p nn.Precision) bool {
	pb, ok := c.Backend.(nn.PrecisionBackend)
	return ok && pb.NativePrecision(p)
}

func (c *counting) GemmPrecision(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	c.flops.Add(int64(2 * m * n * k))
	c.Backend.(nn.PrecisionBackend).GemmPrecision(p, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

func convFlops(g nn.ConvGeom) int64 {
	return int64(2 * g.N * g.K * g.OH * g.OW * g.C * g.KH * g.KW)
}

func (c *counting) Conv2d(geo nn.ConvGeom, x, w, bias, y []float32, s nn.Scratch) {
	c.flops.Add(convFlops(geo))
	c.Backend.Conv2d(geo, x, w, bias, y, s)
}

// Conv2dFused passes nn.FusedConvBackend through (ConvBN asks for it by
// type assertion: without this method the wrapper would silently measure
// the unfused path). A wrapped backend without it gets the same two passes
// ConvBN would run.
func (c *counting) Conv2dFused(geo nn.ConvGeom, x, w []float32, ep nn.ConvEpilogue, y []float32, s nn.Scratch) {
	c.flops.Add(convFlops(geo))
	if c.layers != nil {
		defer func(t0 time.Time) { c.layers.add(geo, time.Since(t0)) }(time.Now())
	}
	if fb, ok := c.Backend.(nn.FusedConvBackend); ok {
		fb.Conv2dFused(geo, x, w, ep, y, s)
		return
	}
	c.Backend.Conv2d(geo, x, w, nil, y, s)
	hw := geo.OH * geo.OW
	for i := range y {
		k := i / hw % geo.K
		v := y[i]
		if ep.Scale != nil {
			v *= ep.Scale[k]
		}
		if ep.Shift != nil {
			v += ep.Shift[k]
		}
		if ep.Residual != nil {
			v += ep.Residual[i]
		}
		if ep.ReLU && v < 0 {
			v = 0
		}
		y[i] = v
	}
}

func (c *counting) Conv2dBackward(geo nn.ConvGeom, x, w, dy, dx, dw, db []float32, s nn.Scratch) {
	if dx != nil {
		c.flops.Add(convFlops(geo))
	}
	if dw != nil {
		c.flops.Add(convFlops(geo))
	}
	c.Backend.Conv2dBackward(geo, x, w, dy, dx, dw, db, s)
}

func randomTensor(rng *rand.Rand, lo, hi float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data() {
		t.Data()[i] = lo + (hi-lo)*rng.Float32()
	}
	return t
}

func resnetForward(p nn.Precision) func() (func() error, error) {
	return func() (func() error, error) {
		m, err := resnet.New18(1000, rand.New(rand.NewSource(0)))
		if err != nil {
			return nil, err
		}
		m.SetTraining(false)
		x := randomTensor(rand.New(rand.NewSource(1)), -2, 2, 1, 3, 224, 224)
		arena := nn.NewArena()
		return func() error {
			g := nn.NewInferenceGraph().WithArena(arena).WithAutocast(p)
			defer g.Release()
			_, err := m.Forward(g, g.Input(x))
			return err
		}, nil
	}
}

func resnetTrain() (func() error, error) {
	m, err := resnet.New18(1000, rand.New(rand.NewSource(0)))
	if err != nil {
		return nil, err
	}
	m.SetTraining(true)
	x := randomTensor(rand.New(rand.NewSource(1)), -2, 2, 2, 3, 224, 224)
	params := m.Params()
	arena := nn.NewArena()
	return func() error {
		nn.ZeroGrads(params)
		g := nn.NewGraph().WithArena(arena).WithEagerRelease()
		defer g.Release()
		y, err := m.Forward(g, g.Input(x))
		if err != nil {
			return err
		}
		return g.Backward(nn.Mean(g, y))
	}, nil
}

// frcnnModel is the library's defaults (ResNet18 body, 5 classes) with the
// transform sized so h x w images are not rescaled.
func frcnnModel(h, w int) (*fasterrcnn.Model, error) {
	c := fasterrcnn.Defaults(5)
	c.MinSize, c.MaxSize = min(h, w), max(h, w)
	c.Device = benchDevice
	m, err := fasterrcnn.New(c)
	deviceModel = m
	return m, err
}

// benchTargets are three boxes per image, scaled to the image.
func benchTargets(h, w, n int) []fasterrcnn.Target {
	sx, sy := float32(w)/320, float32(h)/320
	t := fasterrcnn.Target{Boxes: []box.Box{
		{X1: 20 * sx, Y1: 30 * sy, X2: 140 * sx, Y2: 160 * sy},
		{X1: 150 * sx, Y1: 40 * sy, X2: 300 * sx, Y2: 120 * sy},
		{X1: 60 * sx, Y1: 180 * sy, X2: 200 * sx, Y2: 310 * sy}}, Labels: []int{1, 2, 3}}
	out := make([]fasterrcnn.Target, n)
	for i := range out {
		out[i] = t
	}
	return out
}

func frcnnTrain(h, w int) func() (func() error, error) { return frcnnTrainAt(h, w, nn.Float32) }

// frcnnTrainAt is frcnnTrain under autocast in precision p (torch_bench.py:
// torch.autocast("cpu", dtype=torch.bfloat16) around the forward).
func frcnnTrainAt(h, w int, p nn.Precision) func() (func() error, error) {
	return func() (func() error, error) {
		m, err := frcnnModel(h, w)
		if err != nil {
			return nil, err
		}
		m.Train()
		m.SetAutocast(p)
		rng := rand.New(rand.NewSource(1))
		images := []*tensor.Tensor{randomTensor(rng, 0, 1, 3, h, w), randomTensor(rng, 0, 1, 3, h, w)}
		targets := benchTargets(h, w, 2)
		ctx := context.Background()
		return func() error {
			m.ZeroGrad()
			l, err := m.Losses(ctx, images, targets)
			if err != nil {
				return err
			}
			return l.Backward()
		}, nil
	}
}

func frcnnInfer(h, w int) func() (func() error, error) {
	return func() (func() error, error) {
		m, err := frcnnModel(h, w)
		if err != nil {
			return nil, err
		}
		m.Eval()
		img := randomTensor(rand.New(rand.NewSource(2)), 0, 1, 3, h, w)
		ctx := context.Background()
		return func() error {
			_, err := m.PredictTensors(ctx, []*tensor.Tensor{img})
			return err
		}, nil
	}
}

// randomBoxes returns k boxes inside an h x w image, at least 16 pixels
// wide and high.
func randomBoxes(rng *rand.Rand, k int, h, w float32) []box.Box {
	out := make([]box.Box, k)
	for i := range out {
		x1, y1 := rng.Float32()*(w-16), rng.Float32()*(h-16)
		out[i] = box.Box{X1: x1, Y1: y1, X2: min(w, x1+16+rng.Float32()*w/2), Y2: min(h, y1+16+rng.Float32()*h/2)}
	}
	return out
}

func roiAlignFB() (func() error, error) {
	rng := rand.New(rand.NewSource(3))
	s := roialign.Shape{N: 2, C: 512, H: 10, W: 10}
	cfg := roialign.Defaults(1.0 / 32)
	const k = 1024
	feat := make([]float32, s.N*s.C*s.H*s.W)
	for i := range feat {
		feat[i] = rng.Float32()
	}
	rois := make([]float32, 0, k*5)
	for i, b := range randomBoxes(rng, k, 320, 320) {
		rois = append(rois, float32(i*s.N/k), b.X1, b.Y1, b.X2, b.Y2)
	}
	out := make([]float32, k*s.C*cfg.OutH*cfg.OutW)
	gy := make([]float32, len(out))
	for i := range gy {
		gy[i] = rng.Float32()
	}
	grad := make([]float32, len(feat))
	return func() error {
		if err := roialign.ForwardSlice(out, feat, s, rois, cfg); err != nil {
			return err
		}
		clear(grad)
		return roialign.BackwardSlice(grad, gy, s, rois, cfg)
	}, nil
}

func nms2000() (func() error, error) {
	rng := rand.New(rand.NewSource(4))
	boxes := randomBoxes(rng, 2000, 480, 640)
	scores := make([]float32, len(boxes))
	for i := range scores {
		scores[i] = rng.Float32()
	}
	return func() error {
		keep, err := box.NMS(boxes, scores, 0.7)
		if err == nil && len(keep) == 0 {
			err = fmt.Errorf("nms kept nothing")
		}
		return err
	}, nil
}

func anchors640() (func() error, error) {
	return func() error {
		g, err := anchor.New(anchor.Defaults())
		if err != nil {
			return err
		}
		a, err := g.Generate(480, 640, [][2]int{{15, 20}})
		if err == nil && len(a) != 15*20*15 {
			err = fmt.Errorf("got %d anchors, want %d", len(a), 15*20*15)
		}
		return err
	}, nil
}
