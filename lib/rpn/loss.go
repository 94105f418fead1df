package rpn

import (
	"fmt"
	"slices"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// SmoothL1Beta is the smooth L1 transition point of the RPN box loss, 1/9,
// as torchvision's RegionProposalNetwork.compute_loss.
const SmoothL1Beta = 1.0 / 9

// Losses holds the two RPN losses as scalar graph values.
type Losses struct {
	Objectness *nn.Var // loss_objectness
	BoxReg     *nn.Var // loss_rpn_box_reg
}

// ComputeLoss is RegionProposalNetwork.compute_loss for a single feature
// level: objectness (N, A, H, W) and deltas (N, 4A, H, W) are the head's
// outputs, targets and the sampled anchors pos, neg (ascending anchor
// indices, see SampleAnchors) are per image, anchors in the (H, W, A)
// order of the anchor generator.
//
//   - Objectness: binary cross-entropy with logits, mean over every sampled
//     anchor of every image (positives target 1, negatives 0).
//   - BoxReg: smooth L1 (beta 1/9, summed) between the positives' deltas and
//     their regression targets, divided by the number of sampled anchors
//     (positives and negatives, all images).
//
// The gradients reach objectness and deltas through the head's own layout.
// With no positive anchor (images without ground truth) BoxReg is 0 with a
// zero gradient, as torch's sum over nothing. With no sampled anchor at all
// there is nothing to average and ComputeLoss returns an error.
func ComputeLoss(g *nn.Graph, objectness, deltas *nn.Var, targets []AnchorTargets, pos, neg [][]int) (Losses, error) {
	if g == nil || objectness == nil || deltas == nil {
		return Losses{}, fmt.Errorf("%w: ComputeLoss needs a graph, objectness and deltas", ErrInput)
	}
	os, ds := objectness.Shape(), deltas.Shape()
	if len(os) != 4 || len(ds) != 4 || ds[0] != os[0] || ds[1] != 4*os[1] || ds[2] != os[2] || ds[3] != os[3] {
		return Losses{}, fmt.Errorf("%w: objectness %v and deltas %v are not (N,A,H,W) and (N,4A,H,W)", ErrInput, os, ds)
	}
	n, a, h, w := os[0], os[1], os[2], os[3]
	if len(targets) != n || len(pos) != n || len(neg) != n {
		return Losses{}, fmt.Errorf("%w: %d targets, %d positive and %d negative lists for a batch of %d", ErrInput, len(targets), len(pos), len(neg), n)
	}
	per := a * h * w
	// raw returns the offset of anchor j's channel c (of k per anchor) in
	// image i of a (N, k*A, H, W) tensor.
	raw := func(i, j, k, c int) int {
		ai, loc := j%a, j/a
		return i*k*per + ((ai*k+c)*h+loc/w)*w + loc%w
	}
	// The labels and box targets stay with the graph's ops until Backward:
	// g's memory (recycled with an arena), zeroed.
	labels := g.NewTensor(n * per).Data()
	npos, nsampled := 0, 0
	for i := range n {
		npos += len(pos[i])
		nsampled += len(pos[i]) + len(neg[i])
	}
	// sel, boxIdx and the unions are read during the call only (the loss
	// ops copy the indices they keep): pooled.
	ws := lossWork.Get()
	defer lossWork.Put(ws)
	sel := slices.Grow(ws.sel[:0], nsampled) // each image's union holds at most its two lists
	boxIdx := slices.Grow(ws.boxIdx[:0], 4*npos)
	defer func() { ws.sel, ws.boxIdx = sel[:0], boxIdx[:0] }()
	boxTT := g.NewTensor(npos, 4)
	boxTgt := boxTT.Data()[:0]
	for i := range n {
		t := targets[i]
		if len(t.Labels) != per || len(t.RegressionTargets) != 4*per {
			return Losses{}, fmt.Errorf("%w: image %d: targets for %d anchors, the head predicts %d", ErrInput, i, len(t.Labels), per)
		}
		for _, set := range [][]int{pos[i], neg[i]} {
			for _, j := range set {
				if j < 0 || j >= per {
					return Losses{}, fmt.Errorf("%w: image %d: sampled anchor %d out of range [0, %d)", ErrInput, i, j, per)
				}
			}
		}
		for _, j := range pos[i] {
			labels[raw(i, j, 1, 0)] = 1
			for c := range 4 {
				boxIdx = append(boxIdx, raw(i, j, 4, c))
			}
			boxTgt = append(boxTgt, t.RegressionTargets[4*j:4*j+4]...)
		}
		ws.union = box.SortedUnionInto(slices.Grow(ws.union[:0], len(pos[i])+len(neg[i])), pos[i], neg[i])
		for _, j := range ws.union {
			sel = append(sel, raw(i, j, 1, 0))
		}
	}
	if len(sel) == 0 {
		return Losses{}, fmt.Errorf("%w: no anchor was sampled for the loss", ErrInput)
	}
	obj, err := nn.BCEWithLogits(g, objectness, labels, sel)
	if err != nil {
		return Losses{}, fmt.Errorf("rpn: objectness loss: %w", err)
	}
	boxLoss, err := smoothL1Gather(g, deltas, boxIdx, boxTT, SmoothL1Beta)
	if err != nil {
		return Losses{}, fmt.Errorf("rpn: box loss: %w", err)
	}
	return Losses{Objectness: obj, BoxReg: nn.MulScalar(g, boxLoss, float32(1/float64(len(sel))))}, nil
}

// lossScratch is ComputeLoss's index memory, pooled between calls.
type lossScratch struct{ sel, boxIdx, union []int }

var lossWork freelist.List[lossScratch] // not emptied by a collection, unlike a sync.Pool

// smoothL1Gather returns smooth_l1(x.flat[idx] viewed as (P, 4), target
// (P, 4), beta, "sum"); an empty idx gives a constant 0.
func smoothL1Gather(g *nn.Graph, x *nn.Var, idx []int, target *tensor.Tensor, beta float64) (*nn.Var, error) {
	if len(idx) == 0 {
		return g.Op(g.NewTensor(), []*nn.Var{x}, func(*tensor.Tensor, []*tensor.Tensor) {}), nil
	}
	flat, err := nn.Reshape(g, x, -1, 1)
	if err != nil {
		return nil, err
	}
	sel, err := nn.IndexSelect(g, flat, idx)
	if err != nil {
		return nil, err
	}
	rows, err := nn.Reshape(g, sel, len(idx)/4, 4)
	if err != nil {
		return nil, err
	}
	return nn.SmoothL1(g, rows, target, nil, beta)
}
