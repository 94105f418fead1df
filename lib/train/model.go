package train

import (
	"context"
	"fmt"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
)

// Model is what the trainer trains: parameters, and the loss of a batch.
// Optional methods are discovered by type assertion: Train() and Eval()
// (Fit calls Train), StateDict() *nn.StateDict (checkpoints store it,
// buffers included; without it they store the parameters) and
// SeedSampler(int64) (the trainer reseeds the model's random sampling before
// every forward pass, which makes resumed runs repeat uninterrupted ones).
type Model interface {
	// Params lists the parameters the optimizer updates, in a fixed order.
	Params() []*nn.Param
	// Loss runs the training forward pass on b.
	Loss(ctx context.Context, b data.Batch) (Loss, error)
}

// Loss is one batch's losses, ready to differentiate.
type Loss interface {
	// Values returns the losses by name; "loss" is the total that
	// Backward differentiates.
	Values() map[string]float32
	// Backward adds the gradient of scale*total into the parameters'
	// gradients. It runs once.
	Backward(scale float32) error
}

// Detector adapts a Faster R-CNN model to Model: batches become (3,H,W)
// images in [0,1] and targets, and the losses are torchvision's four plus
// "loss", their sum.
func Detector(m *fasterrcnn.Model) Model { return detector{m} }

type detector struct{ m *fasterrcnn.Model }

func (d detector) Params() []*nn.Param      { return d.m.Params() }
func (d detector) StateDict() *nn.StateDict { return d.m.StateDict() }
func (d detector) Train()                   { d.m.Train() }
func (d detector) Eval()                    { d.m.Eval() }
func (d detector) SeedSampler(seed int64)   { d.m.SeedSampler(seed) }

// SetAutocast passes the precision on to the Faster R-CNN model.
func (d detector) SetAutocast(p nn.Precision) bool {
	d.m.SetAutocast(p)
	return true
}

func (d detector) Unwrap() *fasterrcnn.Model { return d.m }

// Backend is the model's backend, so the optimizer updates where the
// parameters live.
func (d detector) Backend() nn.Backend            { return d.m.Backend() }
func (l detectorLoss) Values() map[string]float32 { return l.l.Values() }
func (l detectorLoss) Backward(s float32) error   { return l.l.BackwardScaled(s) }

type detectorLoss struct{ l *fasterrcnn.Losses }

func (d detector) Loss(ctx context.Context, b data.Batch) (Loss, error) {
	imgs, err := b.Images()
	if err != nil {
		return nil, fmt.Errorf("train: batch %d of epoch %d: %w", b.Index, b.Epoch, err)
	}
	ts := make([]fasterrcnn.Target, len(b.Samples))
	for i, s := range b.Samples {
		ts[i] = fasterrcnn.Target{Boxes: s.Boxes, Labels: s.Labels}
	}
	l, err := d.m.Losses(ctx, imgs, ts)
	if err != nil {
		return nil, err
	}
	return detectorLoss{l}, nil
}
