package roi

import (
	"fmt"
	"slices"

	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// SmoothL1Beta is the smooth L1 transition point of the box-head
// regression loss, 1/9, as torchvision's fastrcnn_loss.
const SmoothL1Beta = 1.0 / 9

// Losses holds the box head's two losses as scalar graph values.
type Losses struct {
	Classifier *nn.Var // loss_classifier
	BoxReg     *nn.Var // loss_box_reg
}

// FastRCNNLoss is torchvision's fastrcnn_loss over the sampled proposals of
// all images, concatenated in image order: classLogits (R, C) and
// boxRegression (R, 4C) from the predictor, labels (R) in [0, C) and
// regressionTargets (4R) as Samples holds them.
//
//   - Classifier: cross-entropy, mean over all R proposals.
//   - BoxReg: smooth L1 (beta 1/9, summed) over the foreground proposals
//     (label > 0), between the 4 deltas of the proposal's own class and its
//     regression target, divided by R.
//
// Without foreground proposals BoxReg is 0 with a zero gradient. R = 0 has
// nothing to average and is an error.
func FastRCNNLoss(g *nn.Graph, classLogits, boxRegression *nn.Var, labels []int, regressionTargets []float32) (Losses, error) {
	if g == nil || classLogits == nil || boxRegression == nil {
		return Losses{}, fmt.Errorf("%w: FastRCNNLoss needs a graph, logits and box regression", ErrInput)
	}
	cs, bs := classLogits.Shape(), boxRegression.Shape()
	if len(cs) != 2 || len(bs) != 2 || bs[0] != cs[0] || bs[1] != 4*cs[1] {
		return Losses{}, fmt.Errorf("%w: class logits %v and box regression %v are not (R, C) and (R, 4C)", ErrInput, cs, bs)
	}
	r, c := cs[0], cs[1]
	if r == 0 {
		return Losses{}, fmt.Errorf("%w: no sampled proposal for the loss", ErrInput)
	}
	if len(labels) != r || len(regressionTargets) != 4*r {
		return Losses{}, fmt.Errorf("%w: %d labels and %d regression targets for %d proposals", ErrInput, len(labels), len(regressionTargets), r)
	}
	fg := 0
	for i, l := range labels {
		if l < 0 || l >= c {
			return Losses{}, fmt.Errorf("%w: label %d of proposal %d outside [0, %d)", ErrInput, l, i, c)
		}
		if l > 0 {
			fg++
		}
	}
	// idx is read during the call only (IndexSelect copies it): pooled.
	ip := lossIdx.Get()
	defer lossIdx.Put(ip)
	idx := slices.Grow((*ip)[:0], 4*fg)
	defer func() { *ip = idx[:0] }()
	// The targets stay with the loss op until Backward: g's memory.
	tt := g.NewTensor(fg, 4)
	tgt := tt.Data()[:0]
	for i, l := range labels {
		if l > 0 {
			for k := range 4 {
				idx = append(idx, i*4*c+4*l+k)
			}
			tgt = append(tgt, regressionTargets[4*i:4*i+4]...)
		}
	}
	cls, err := nn.CrossEntropy(g, classLogits, labels)
	if err != nil {
		return Losses{}, fmt.Errorf("roi: classifier loss: %w", err)
	}
	var boxLoss *nn.Var
	if len(idx) == 0 {
		boxLoss = g.Op(g.NewTensor(), []*nn.Var{boxRegression}, func(*tensor.Tensor, []*tensor.Tensor) {})
	} else {
		flat, err := nn.Reshape(g, boxRegression, -1, 1)
		if err != nil {
			return Losses{}, fmt.Errorf("roi: %w", err)
		}
		sel, err := nn.IndexSelect(g, flat, idx)
		if err != nil {
			return Losses{}, fmt.Errorf("roi: %w", err)
		}
		rows, err := nn.Reshape(g, sel, len(idx)/4, 4)
		if err != nil {
			return Losses{}, fmt.Errorf("roi: %w", err)
		}
		if boxLoss, err = nn.SmoothL1(g, rows, tt, nil, SmoothL1Beta); err != nil {
			return Losses{}, fmt.Errorf("roi: box loss: %w", err)
		}
		boxLoss = nn.MulScalar(g, boxLoss, float32(1/float64(r)))
	}
	return Losses{Classifier: cls, BoxReg: boxLoss}, nil
}

// lossIdx recycles FastRCNNLoss's index lists.
var lossIdx freelist.List[[]int] // not emptied by a collection, unlike a sync.Pool
