package roi

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
)

// BoxHead turns pooled region features (K, C, 7, 7) into one feature vector
// per region (K, D). A notebook can supply its own in
// fasterrcnn.Config.BoxHead. Params lists the trainable parameters;
// AddState adds parameters and buffers under prefix (the model passes
// "roi_heads.box_head.").
type BoxHead interface {
	Forward(g *nn.Graph, pooled *nn.Var) (*nn.Var, error)
	Params() []*nn.Param
	AddState(sd *nn.StateDict, prefix string)
}

// BoxHeadFunc adapts a function to a BoxHead without parameters of its own:
// Params returns nil and AddState adds nothing.
type BoxHeadFunc func(g *nn.Graph, pooled *nn.Var) (*nn.Var, error)

// Forward calls f.
func (f BoxHeadFunc) Forward(g *nn.Graph, pooled *nn.Var) (*nn.Var, error) { return f(g, pooled) }

// Params returns nil: a function holds no parameters.
func (f BoxHeadFunc) Params() []*nn.Param { return nil }

// AddState adds nothing.
func (f BoxHeadFunc) AddState(sd *nn.StateDict, prefix string) {}

// Predictor turns the box head's features (K, D) into class logits
// (K, numClasses) and per-class box deltas (K, 4*numClasses), class k's
// deltas in columns 4k..4k+3, decoded with the box coder weights of Config.
// A notebook can supply its own in fasterrcnn.Config.Predictor (the model
// passes "roi_heads.box_predictor." to AddState).
type Predictor interface {
	Forward(g *nn.Graph, x *nn.Var) (classLogits, boxRegression *nn.Var, err error)
	Params() []*nn.Param
	AddState(sd *nn.StateDict, prefix string)
}

// PredictorFunc adapts a function to a Predictor without parameters of its
// own: Params returns nil and AddState adds nothing.
type PredictorFunc func(g *nn.Graph, x *nn.Var) (classLogits, boxRegression *nn.Var, err error)

// Forward calls f.
func (f PredictorFunc) Forward(g *nn.Graph, x *nn.Var) (classLogits, boxRegression *nn.Var, err error) {
	return f(g, x)
}

// Params returns nil: a function holds no parameters.
func (f PredictorFunc) Params() []*nn.Param { return nil }

// AddState adds nothing.
func (f PredictorFunc) AddState(sd *nn.StateDict, prefix string) {}

// DefaultRepresentationSize is torchvision's FasterRCNN box head width.
const DefaultRepresentationSize = 1024

// TwoMLPHead is torchvision's TwoMLPHead: the pooled features flattened
// channel-major (c*OutH*OutW + y*OutW + x), then fc6 and fc7, each followed
// by ReLU.
type TwoMLPHead struct {
	FC6, FC7 *nn.Linear
}

// NewTwoMLPHead returns a TwoMLPHead taking inFeatures = C*OutH*OutW values
// per region (512*7*7 for the ResNet18 body) and producing representation
// values (torchvision's default 1024), initialised as torch's nn.Linear from
// rng (fc6 first).
func NewTwoMLPHead(inFeatures, representation int, rng *rand.Rand) (*TwoMLPHead, error) {
	if inFeatures <= 0 || representation <= 0 {
		return nil, fmt.Errorf("%w: TwoMLPHead needs positive sizes, got %d -> %d", ErrInput, inFeatures, representation)
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: TwoMLPHead needs a random source", ErrInput)
	}
	fc6, err := nn.NewLinear("fc6", inFeatures, representation, true, rng)
	if err != nil {
		return nil, fmt.Errorf("roi: %w", err)
	}
	fc7, err := nn.NewLinear("fc7", representation, representation, true, rng)
	if err != nil {
		return nil, fmt.Errorf("roi: %w", err)
	}
	return &TwoMLPHead{FC6: fc6, FC7: fc7}, nil
}

// Forward maps pooled (K, C, OutH, OutW) features to (K, representation).
func (h *TwoMLPHead) Forward(g *nn.Graph, pooled *nn.Var) (*nn.Var, error) {
	if pooled == nil || pooled.Value == nil {
		return nil, fmt.Errorf("%w: box head got no features", ErrInput)
	}
	s := pooled.Shape()
	if len(s) < 2 || pooled.Value.Len() != s[0]*h.FC6.In {
		return nil, fmt.Errorf("%w: box head takes (K, ...) features with %d values per region, got %v", ErrInput, h.FC6.In, s)
	}
	x, err := nn.Reshape(g, pooled, s[0], h.FC6.In)
	if err != nil {
		return nil, fmt.Errorf("roi: %w", err)
	}
	if x, err = h.FC6.Forward(g, x); err != nil {
		return nil, fmt.Errorf("roi: fc6: %w", err)
	}
	if x, err = h.FC7.Forward(g, nn.ReLU(g, x)); err != nil {
		return nil, fmt.Errorf("roi: fc7: %w", err)
	}
	return nn.ReLU(g, x), nil
}

// Params returns fc6 and fc7's weights and biases.
func (h *TwoMLPHead) Params() []*nn.Param {
	return append(h.FC6.Params(), h.FC7.Params()...)
}

// AddState adds fc6 and fc7 under prefix.
func (h *TwoMLPHead) AddState(sd *nn.StateDict, prefix string) {
	h.FC6.AddState(sd, prefix+"fc6.")
	h.FC7.AddState(sd, prefix+"fc7.")
}

// FastRCNNPredictor is torchvision's FastRCNNPredictor: two linear layers on
// the box head's output, cls_score (numClasses logits, class 0 background)
// and bbox_pred (4*numClasses deltas).
type FastRCNNPredictor struct {
	ClsScore, BBoxPred *nn.Linear
}

// NewFastRCNNPredictor returns a predictor for inFeatures-wide box features
// and numClasses classes (background included, so at least 2), initialised
// as torch's nn.Linear from rng (cls_score first).
func NewFastRCNNPredictor(inFeatures, numClasses int, rng *rand.Rand) (*FastRCNNPredictor, error) {
	if inFeatures <= 0 || numClasses < 2 {
		return nil, fmt.Errorf("%w: FastRCNNPredictor needs positive input size and at least 2 classes (background included), got %d and %d", ErrInput, inFeatures, numClasses)
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: FastRCNNPredictor needs a random source", ErrInput)
	}
	cls, err := nn.NewLinear("cls_score", inFeatures, numClasses, true, rng)
	if err != nil {
		return nil, fmt.Errorf("roi: %w", err)
	}
	bbox, err := nn.NewLinear("bbox_pred", inFeatures, 4*numClasses, true, rng)
	if err != nil {
		return nil, fmt.Errorf("roi: %w", err)
	}
	return &FastRCNNPredictor{ClsScore: cls, BBoxPred: bbox}, nil
}

// NumClasses returns the number of classes, background included.
func (p *FastRCNNPredictor) NumClasses() int { return p.ClsScore.Out }

// Forward returns the class logits and box deltas of x (K, inFeatures).
func (p *FastRCNNPredictor) Forward(g *nn.Graph, x *nn.Var) (classLogits, boxRegression *nn.Var, err error) {
	if x == nil || x.Value == nil {
		return nil, nil, fmt.Errorf("%w: predictor got no features", ErrInput)
	}
	s := x.Shape()
	if len(s) < 1 || x.Value.Len() != s[0]*p.ClsScore.In {
		return nil, nil, fmt.Errorf("%w: predictor takes (K, %d) features, got %v", ErrInput, p.ClsScore.In, s)
	}
	if len(s) != 2 { // torchvision flattens from dimension 1
		if x, err = nn.Reshape(g, x, s[0], p.ClsScore.In); err != nil {
			return nil, nil, fmt.Errorf("roi: %w", err)
		}
	}
	if classLogits, err = p.ClsScore.Forward(g, x); err != nil {
		return nil, nil, fmt.Errorf("roi: cls_score: %w", err)
	}
	if boxRegression, err = p.BBoxPred.Forward(g, x); err != nil {
		return nil, nil, fmt.Errorf("roi: bbox_pred: %w", err)
	}
	return classLogits, boxRegression, nil
}

// Params returns cls_score and bbox_pred's weights and biases.
func (p *FastRCNNPredictor) Params() []*nn.Param {
	return append(p.ClsScore.Params(), p.BBoxPred.Params()...)
}

// AddState adds cls_score and bbox_pred under prefix.
func (p *FastRCNNPredictor) AddState(sd *nn.StateDict, prefix string) {
	p.ClsScore.AddState(sd, prefix+"cls_score.")
	p.BBoxPred.AddState(sd, prefix+"bbox_pred.")
}
