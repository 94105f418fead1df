package fasterrcnn

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/rpn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// Target is one image's ground truth for training.
type Target struct {
	// Boxes are (x1, y1, x2, y2) in pixels of the image as given (before
	// the transform), each with x2 > x1 and y2 > y1. They may reach
	// outside the image (they are used as they are, as in torchvision).
	// No boxes is valid: every anchor and proposal is then background.
	Boxes []box.Box
	// Labels holds one class per box, in [1, NumClasses).
	Labels []int
}

// Detections are one image's detected objects in decreasing score order.
type Detections struct {
	Boxes  []box.Box // (x1, y1, x2, y2) in pixels of the original image
	Scores []float32 // softmax probability of the class
	Labels []int     // class index in [1, NumClasses)
}

// Losses are the four training losses of one batch, torchvision's loss
// dictionary, and their sum, as scalar graph values.
type Losses struct {
	Objectness *nn.Var // loss_objectness
	RPNBoxReg  *nn.Var // loss_rpn_box_reg
	Classifier *nn.Var // loss_classifier
	BoxReg     *nn.Var // loss_box_reg
	Total      *nn.Var // the sum of the four

	g *nn.Graph
	// vals are the values in lossKeys' order, saved (saved set) by
	// Backward before the pass's buffers are recycled.
	vals  [5]float32
	saved bool
	// batch, when not nil, is the transformed batch's buffer, borrowed
	// from arena and given back once the graph is released.
	batch []float32
	arena *nn.Arena
}

// Backward differentiates Total, adding the gradient into every trainable
// parameter's Grad (clear them with Model.ZeroGrad between steps). It can
// run once. Afterwards the pass's buffers are recycled for the next one:
// read the losses with Values, not through the Vars.
func (l *Losses) Backward() error {
	if l == nil || l.g == nil {
		return fmt.Errorf("%w: no losses to differentiate", ErrInput)
	}
	return l.backward(l.Total)
}

// backward saves the values, differentiates seed (Total or a multiple of
// it), releases the pass and gives the batch back to the arena.
func (l *Losses) backward(seed *nn.Var) error {
	l.save()
	err := l.g.Backward(seed)
	l.g.Release()
	if l.batch != nil {
		l.arena.Put(l.batch)
		l.batch = nil
	}
	if err != nil {
		return fmt.Errorf("fasterrcnn: backward: %w", err)
	}
	return nil
}

// lossKeys are Values' keys, in the order of Losses.vals.
var lossKeys = [5]string{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss"}

// save keeps the values (once) for Values after the pass is released.
func (l *Losses) save() {
	if l.saved {
		return
	}
	l.vals, l.saved = l.read(), true
}

// read returns the values in lossKeys' order from the Vars.
func (l *Losses) read() (v [5]float32) {
	// The total's sum may still be queued on a device backend; a failure
	// of that work resurfaces at the backend's next operation.
	if l.g != nil {
		_ = nn.Sync(l.g.Backend())
	}
	for i, x := range [5]*nn.Var{l.Objectness, l.RPNBoxReg, l.Classifier, l.BoxReg, l.Total} {
		v[i] = x.Value.Data()[0]
	}
	return v
}

// Values returns the losses as numbers under torchvision's keys
// (loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg) plus
// "loss" for the total. The map is a copy.
func (l *Losses) Values() map[string]float32 {
	vals := l.vals
	if !l.saved {
		vals = l.read()
	}
	out := make(map[string]float32, len(lossKeys))
	for i, k := range lossKeys {
		out[k] = vals[i]
	}
	return out
}

// Losses runs the training forward pass on images ((3, H, W) tensors in
// [0, 1]) and their targets and returns the losses. In training mode
// (Train) the backbone uses batch statistics and the RPN its training
// top-n; in evaluation mode the same losses are computed with the
// evaluation settings (a validation loss). ctx is checked between stages.
func (m *Model) Losses(ctx context.Context, images []*tensor.Tensor, targets []Target) (*Losses, error) {
	if len(targets) != len(images) {
		return nil, fmt.Errorf("%w: %d targets for %d images", ErrInput, len(targets), len(images))
	}
	for i, t := range targets {
		if err := m.checkTarget(i, t); err != nil {
			return nil, err
		}
	}
	// The batch lives in the arena until Backward releases the pass; its
	// description and the rescaled targets are the model's memory (read
	// only during LossesBatch).
	il := &m.batch
	if _, err := m.transform.ApplyTo(il, m.arena, images, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	n := len(targets)
	if len(m.rt) < n {
		m.rt = make([]Target, n)
	}
	rt := m.rt[:n]
	for i, t := range targets {
		// transform.ResizeBoxes's arithmetic on the boxes as they are.
		rh, rw := transform.ResizeRatios(il.OriginalSizes[i], il.ImageSizes[i])
		b := slices.Grow(rt[i].Boxes[:0], len(t.Boxes))[:len(t.Boxes)]
		for j, tb := range t.Boxes {
			b[j] = box.Box{X1: tb.X1 * rw, Y1: tb.Y1 * rh, X2: tb.X2 * rw, Y2: tb.Y2 * rh}
		}
		rt[i] = Target{Boxes: b, Labels: t.Labels}
	}
	l, err := m.LossesBatch(ctx, il, rt)
	if err != nil {
		m.arena.Put(il.Tensor.Data())
		return nil, err
	}
	l.batch, l.arena = il.Tensor.Data(), m.arena
	return l, nil
}

// LossesBatch is Losses on a batch the transform has already prepared; the
// targets' boxes are in pixels of the resized images (il.ImageSizes).
func (m *Model) LossesBatch(ctx context.Context, il *transform.ImageList, targets []Target) (*Losses, error) {
	if err := m.checkBatch(il); err != nil {
		return nil, err
	}
	n := len(il.ImageSizes)
	if len(targets) != n {
		return nil, fmt.Errorf("%w: %d targets for %d images", ErrInput, len(targets), n)
	}
	for i, t := range targets {
		if err := m.checkTarget(i, t); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := nn.NewGraph().WithArena(m.arena).WithEagerRelease().WithBackend(m.backend).WithAutocast(m.autocast)
	feats, err := m.features(g, il.Tensor)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.rpnForward(g, feats, il)
	if err != nil {
		return nil, err
	}
	props, err := m.proposals(r, il, m.training)
	if err != nil {
		return nil, err
	}
	// RPN targets and losses (torchvision samples the anchors of every
	// image before the RoI head samples its proposals).
	if len(m.tscr) < n {
		m.tscr, m.sscr = make([]rpn.TargetScratch, n), make([]roi.TrainingScratch, n)
		m.ats, m.pos, m.neg = make([]rpn.AnchorTargets, n), make([][]int, n), make([][]int, n)
	}
	// The model's memory: read by ComputeLoss, which keeps none of it.
	ats, pos, neg := m.ats[:n], m.pos[:n], m.neg[:n]
	for i, t := range targets {
		if ats[i], err = rpn.AssignTargetsWith(&m.tscr[i], r.anchors, t.Boxes, m.cfg.RPN); err != nil {
			return nil, fmt.Errorf("fasterrcnn: image %d: %w", i, err)
		}
		if pos[i], neg[i], err = rpn.SampleAnchorsWith(&m.tscr[i], ats[i].Labels, m.cfg.RPN, m.rng); err != nil {
			return nil, fmt.Errorf("fasterrcnn: image %d: %w", i, err)
		}
	}
	rl, err := rpn.ComputeLoss(g, r.objectness, r.deltas, ats, pos, neg)
	if err != nil {
		return nil, fmt.Errorf("fasterrcnn: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Box head samples, forward and losses.
	// The model's memory: FastRCNNLoss copies what it keeps.
	labels, regTargets := m.labels[:0], m.regTargets[:0]
	for i, t := range targets {
		s, err := roi.SelectTrainingSamplesWith(&m.sscr[i], props[i], t.Boxes, t.Labels, m.cfg.RoI, m.rng)
		if err != nil {
			return nil, fmt.Errorf("fasterrcnn: image %d: %w", i, err)
		}
		props[i] = s.Proposals
		labels = append(labels, s.Labels...)
		regTargets = append(regTargets, s.RegressionTargets...)
	}
	m.labels, m.regTargets = labels, regTargets
	logits, reg, err := m.boxHeads(g, feats, props, il)
	if err != nil {
		return nil, err
	}
	bl, err := roi.FastRCNNLoss(g, logits, reg, labels, regTargets)
	if err != nil {
		return nil, fmt.Errorf("fasterrcnn: %w", err)
	}
	l := &Losses{Objectness: rl.Objectness, RPNBoxReg: rl.BoxReg, Classifier: bl.Classifier, BoxReg: bl.BoxReg, g: g}
	total := l.Objectness
	for _, v := range []*nn.Var{l.RPNBoxReg, l.Classifier, l.BoxReg} {
		if total, err = nn.Add(g, total, v); err != nil {
			return nil, fmt.Errorf("fasterrcnn: %w", err)
		}
	}
	l.Total = total
	return l, nil
}

// Predict detects objects in one image. It always runs the evaluation
// forward pass (running BatchNorm statistics, test top-n), whatever the
// model's mode, which it leaves unchanged.
func (m *Model) Predict(ctx context.Context, img image.Image) (Detections, error) {
	if img == nil {
		return Detections{}, fmt.Errorf("%w: nil image", ErrInput)
	}
	t, err := transform.FromImage(img)
	if err != nil {
		return Detections{}, fmt.Errorf("%w: %w", ErrInput, err)
	}
	d, err := m.PredictTensors(ctx, []*tensor.Tensor{t})
	if err != nil {
		return Detections{}, err
	}
	return d[0], nil
}

// PredictTensors detects objects in a batch of (3, H, W) images with
// values in [0, 1] (sizes may differ), as Predict.
func (m *Model) PredictTensors(ctx context.Context, images []*tensor.Tensor) ([]Detections, error) {
	il, _, err := m.transform.ApplyWith(m.arena, images, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer m.arena.Put(il.Tensor.Data()) // the detections are copies
	return m.PredictBatch(ctx, il)
}

// PredictBatch detects objects in a batch the transform has already
// prepared; boxes are mapped back to il.OriginalSizes.
func (m *Model) PredictBatch(ctx context.Context, il *transform.ImageList) ([]Detections, error) {
	if err := m.checkBatch(il); err != nil {
		return nil, err
	}
	if len(il.OriginalSizes) != len(il.ImageSizes) {
		return nil, fmt.Errorf("%w: %d original sizes for %d images", ErrInput, len(il.OriginalSizes), len(il.ImageSizes))
	}
	if m.training {
		m.Backbone.SetTraining(false)
		defer m.Backbone.SetTraining(true)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := nn.NewInferenceGraph().WithArena(m.arena).WithBackend(m.backend)
	defer g.Release() // the detections below are copies
	feats, err := m.features(g, il.Tensor)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := m.rpnForward(g, feats, il)
	if err != nil {
		return nil, err
	}
	props, err := m.proposals(r, il, false)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logits, reg, err := m.boxHeads(g, feats, props, il)
	if err != nil {
		return nil, err
	}
	dets, err := m.postprocess(logits.Value, reg.Value, props, il)
	if err != nil {
		return nil, err
	}
	out := make([]Detections, len(dets))
	for i, d := range dets {
		b, err := transform.Postprocess([]*tensor.Tensor{box.ToTensor(d.Boxes)}, il.ImageSizes[i:i+1], il.OriginalSizes[i:i+1])
		if err != nil {
			return nil, fmt.Errorf("fasterrcnn: %w", err)
		}
		ob, err := box.FromTensor(b[0])
		if err != nil {
			return nil, fmt.Errorf("fasterrcnn: %w", err)
		}
		out[i] = Detections{Boxes: ob, Scores: d.Scores, Labels: d.Labels}
	}
	return out, nil
}

// checkBatch validates a prepared batch.
func (m *Model) checkBatch(il *transform.ImageList) error {
	if il == nil || il.Tensor == nil {
		return fmt.Errorf("%w: no batch", ErrInput)
	}
	s := il.Tensor.Shape()
	if len(s) != 4 || s[1] != 3 || s[0] == 0 || s[2] == 0 || s[3] == 0 {
		return fmt.Errorf("%w: batch has shape %v, want (N, 3, H, W) with N, H, W > 0", ErrInput, s)
	}
	if len(il.ImageSizes) != s[0] {
		return fmt.Errorf("%w: %d image sizes for a batch of %d", ErrInput, len(il.ImageSizes), s[0])
	}
	for i, sz := range il.ImageSizes {
		if sz.H <= 0 || sz.W <= 0 || sz.H > s[2] || sz.W > s[3] {
			return fmt.Errorf("%w: image %d has size %v in a %dx%d batch", ErrInput, i, sz, s[2], s[3])
		}
	}
	if il.Tensor.HasNaN() {
		return fmt.Errorf("%w: the batch holds NaN or infinite values", ErrInput)
	}
	return nil
}

// checkTarget validates one image's ground truth.
func (m *Model) checkTarget(i int, t Target) error {
	if len(t.Labels) != len(t.Boxes) {
		return fmt.Errorf("%w: image %d has %d boxes and %d labels", ErrInput, i, len(t.Boxes), len(t.Labels))
	}
	for j, b := range t.Boxes {
		for _, v := range []float32{b.X1, b.Y1, b.X2, b.Y2} {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: image %d box %d is %v, want finite coordinates", ErrInput, i, j, b)
			}
		}
		if !(b.X2 > b.X1 && b.Y2 > b.Y1) {
			return fmt.Errorf("%w: image %d box %d is %v, want positive width and height", ErrInput, i, j, b)
		}
		if l := t.Labels[j]; l < 1 || l >= m.cfg.NumClasses {
			return fmt.Errorf("%w: image %d box %d has label %d, want 1..%d (0 is the background)", ErrInput, i, j, l, m.cfg.NumClasses-1)
		}
	}
	return nil
}
