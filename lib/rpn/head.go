package rpn

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
)

// Head is what the RPN learns: it maps one feature map (N, C, H, W) to
// objectness logits (N, A, H, W) and box deltas (N, 4A, H, W), channel a of
// the logits and channels 4a..4a+3 of the deltas belonging to anchor a of
// the anchor generator's cell anchors. A notebook can supply its own Head
// in fasterrcnn.Config.RPNHead.
//
// Params lists the trainable parameters (the optimiser's); AddState adds
// the parameters and buffers under prefix with the keys a weights file uses
// (the model passes "rpn.head.").
type Head interface {
	Forward(g *nn.Graph, features *nn.Var) (objectness, deltas *nn.Var, err error)
	Params() []*nn.Param
	AddState(sd *nn.StateDict, prefix string)
}

// HeadFunc adapts a function to a Head without parameters of its own (or
// whose parameters the caller manages): Params returns nil and AddState
// adds nothing.
type HeadFunc func(g *nn.Graph, features *nn.Var) (objectness, deltas *nn.Var, err error)

// Forward calls f.
func (f HeadFunc) Forward(g *nn.Graph, features *nn.Var) (objectness, deltas *nn.Var, err error) {
	return f(g, features)
}

// Params returns nil: a function holds no parameters.
func (f HeadFunc) Params() []*nn.Param { return nil }

// AddState adds nothing.
func (f HeadFunc) AddState(sd *nn.StateDict, prefix string) {}

// ConvHead is torchvision's RPNHead with conv_depth 1: a 3x3 convolution
// (C -> C, padding 1) followed by ReLU, then two 1x1 convolutions, cls_logits
// (C -> A) and bbox_pred (C -> 4A). Its keys are conv.0.0 (the convolution
// inside torchvision's Conv2dNormActivation), cls_logits and bbox_pred.
type ConvHead struct {
	Conv      *nn.Conv2d
	ClsLogits *nn.Conv2d
	BBoxPred  *nn.Conv2d
}

// NewConvHead returns an RPN head for inChannels-channel features and
// numAnchors anchors per location, initialised as torchvision: weights
// normal with std 0.01, biases 0, drawn from rng in the order conv,
// cls_logits, bbox_pred.
func NewConvHead(inChannels, numAnchors int, rng *rand.Rand) (*ConvHead, error) {
	if inChannels <= 0 || numAnchors <= 0 {
		return nil, fmt.Errorf("%w: RPN head needs positive channels and anchors, got %d and %d", ErrInput, inChannels, numAnchors)
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: RPN head needs a random source", ErrInput)
	}
	conv, err := nn.NewConv2d("conv.0.0", inChannels, inChannels, 3, 1, 1, true, rng)
	if err != nil {
		return nil, fmt.Errorf("rpn: %w", err)
	}
	cls, err := nn.NewConv2d("cls_logits", inChannels, numAnchors, 1, 1, 0, true, rng)
	if err != nil {
		return nil, fmt.Errorf("rpn: %w", err)
	}
	bbox, err := nn.NewConv2d("bbox_pred", inChannels, 4*numAnchors, 1, 1, 0, true, rng)
	if err != nil {
		return nil, fmt.Errorf("rpn: %w", err)
	}
	for _, c := range []*nn.Conv2d{conv, cls, bbox} {
		w := c.Weight.Value.Data()
		for i := range w {
			w[i] = float32(rng.NormFloat64() * 0.01)
		}
		nn.Fill(c.Bias.Value, 0)
	}
	return &ConvHead{Conv: conv, ClsLogits: cls, BBoxPred: bbox}, nil
}

// NumAnchors returns the number of anchors per location the head predicts.
func (h *ConvHead) NumAnchors() int { return h.ClsLogits.OutC }

// Forward runs the head on one feature map.
func (h *ConvHead) Forward(g *nn.Graph, features *nn.Var) (objectness, deltas *nn.Var, err error) {
	if features == nil || features.Value == nil {
		return nil, nil, fmt.Errorf("%w: RPN head got no features", ErrInput)
	}
	if s := features.Shape(); len(s) != 4 || s[1] != h.Conv.InC {
		return nil, nil, fmt.Errorf("%w: RPN head takes (N, %d, H, W) features, got %v", ErrInput, h.Conv.InC, s)
	}
	t, err := h.Conv.Forward(g, features)
	if err != nil {
		return nil, nil, fmt.Errorf("rpn: head conv: %w", err)
	}
	t = nn.ReLU(g, t)
	if objectness, err = h.ClsLogits.Forward(g, t); err != nil {
		return nil, nil, fmt.Errorf("rpn: cls_logits: %w", err)
	}
	if deltas, err = h.BBoxPred.Forward(g, t); err != nil {
		return nil, nil, fmt.Errorf("rpn: bbox_pred: %w", err)
	}
	return objectness, deltas, nil
}

// Params returns the six parameters in state-dict order.
func (h *ConvHead) Params() []*nn.Param {
	var ps []*nn.Param
	for _, c := range []*nn.Conv2d{h.Conv, h.ClsLogits, h.BBoxPred} {
		ps = append(ps, c.Params()...)
	}
	return ps
}

// AddState adds conv.0.0, cls_logits and bbox_pred (weight and bias each)
// under prefix.
func (h *ConvHead) AddState(sd *nn.StateDict, prefix string) {
	h.Conv.AddState(sd, prefix+"conv.0.0.")
	h.ClsLogits.AddState(sd, prefix+"cls_logits.")
	h.BBoxPred.AddState(sd, prefix+"bbox_pred.")
}
