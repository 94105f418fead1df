package nn

import (
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/tensor"
)

// BCEWithLogits is binary_cross_entropy_with_logits(x[idx], t[idx]) with
// mean reduction over the selected flat indices idx (all elements when idx
// is nil). targets holds one value per element of logits. An empty
// selection gives NaN (torch's mean of nothing).
func BCEWithLogits(g *Graph, logits *Var, targets []float32, idx []int) (*Var, error) {
	g.hostSync()
	n := logits.Value.Len()
	if len(targets) != n {
		return nil, fmt.Errorf("nn: BCEWithLogits: %d targets for %d logits", len(targets), n)
	}
	sel := g.selection(idx, n)
	for _, i := range sel {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("nn: BCEWithLogits: index %d out of range for %d logits", i, n)
		}
	}
	x := logits.Value.Data()
	var s float64
	for _, i := range sel {
		v, t := float64(x[i]), float64(targets[i])
		s += math.Max(v, 0) - v*t + math.Log1p(math.Exp(-math.Abs(v)))
	}
	cnt := float64(len(sel))
	out := g.newTensorNoZero()
	out.Data()[0] = float32(s / cnt)
	inputs := g.varList(logits)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().bce.take()
	*op = bceOp{x: x, targets: targets, idx: sel, cnt: cnt}
	return g.push(out, inputs, nil, op), nil
}

// bceOp is BCEWithLogits's backward.
type bceOp struct {
	x, targets []float32
	idx        []int
	cnt        float64
}

func (o *bceOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	k := float64(gy.Data()[0]) / o.cnt
	dx, x, targets := gin[0].Data(), o.x, o.targets
	for _, i := range o.idx {
		dx[i] += float32(k * (1/(1+math.Exp(-float64(x[i]))) - float64(targets[i])))
	}
}

// SmoothL1 is smooth_l1_loss(pred[rows], target[rows], beta, reduction
// "sum"): rows selects rows of pred (dimension 0) and of target, which has
// pred's shape; nil rows means all. beta 0 is the L1 loss.
func SmoothL1(g *Graph, pred *Var, target *tensor.Tensor, rows []int, beta float64) (*Var, error) {
	g.hostSync()
	if !tensor.SameShape(pred.Shape(), target.Shape()) || pred.Value.Dims() < 1 {
		return nil, fmt.Errorf("nn: SmoothL1: pred shape %v and target shape %v differ", pred.Shape(), target.Shape())
	}
	if beta < 0 {
		return nil, fmt.Errorf("nn: SmoothL1: negative beta %v", beta)
	}
	nr := pred.Shape()[0]
	width := 0
	if nr > 0 {
		width = pred.Value.Len() / nr
	}
	sel := g.selection(rows, nr)
	for _, r := range sel {
		if r < 0 || r >= nr {
			return nil, fmt.Errorf("nn: SmoothL1: row %d out of range for %d rows", r, nr)
		}
	}
	p, t := pred.Value.Data(), target.Data()
	var s float64
	for _, r := range sel {
		for j := r * width; j < (r+1)*width; j++ {
			d := math.Abs(float64(p[j]) - float64(t[j]))
			if d < beta {
				s += 0.5 * d * d / beta
			} else {
				s += d - 0.5*beta
			}
		}
	}
	out := g.newTensorNoZero()
	out.Data()[0] = float32(s)
	inputs := g.varList(pred)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().smoothL1.take()
	*op = smoothL1Op{p: p, t: t, rows: sel, width: width, beta: beta}
	return g.push(out, inputs, nil, op), nil
}

// smoothL1Op is SmoothL1's backward.
type smoothL1Op struct {
	p, t  []float32
	rows  []int
	width int
	beta  float64
}

func (o *smoothL1Op) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	k := float64(gy.Data()[0])
	dx, p, t, width, beta := gin[0].Data(), o.p, o.t, o.width, o.beta
	for _, r := range o.rows {
		for j := r * width; j < (r+1)*width; j++ {
			d := float64(p[j]) - float64(t[j])
			var gr float64
			switch {
			case math.Abs(d) < beta:
				gr = d / beta
			case d > 0:
				gr = 1
			case d < 0:
				gr = -1
			}
			dx[j] += float32(k * gr)
		}
	}
}

// CrossEntropy is cross_entropy(logits, labels) with mean reduction:
// logits (N, C), labels in [0, C). An empty batch gives NaN.
func CrossEntropy(g *Graph, logits *Var, labels []int) (*Var, error) {
	g.hostSync()
	if logits.Value.Dims() != 2 {
		return nil, fmt.Errorf("nn: CrossEntropy: logits must be (N, C), got shape %v", logits.Shape())
	}
	n, c := logits.Shape()[0], logits.Shape()[1]
	if len(labels) != n {
		return nil, fmt.Errorf("nn: CrossEntropy: %d labels for %d rows", len(labels), n)
	}
	for _, l := range labels {
		if l < 0 || l >= c {
			return nil, fmt.Errorf("nn: CrossEntropy: label %d out of range for %d classes", l, c)
		}
	}
	lab := append(g.newInts(len(labels))[:0], labels...)
	x := logits.Value.Data()
	prob := g.newFloat64s(n * c)
	var s float64
	for r := 0; r < n; r++ {
		row := x[r*c : (r+1)*c]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var z float64
		for j, v := range row {
			e := math.Exp(float64(v) - m)
			prob[r*c+j] = e
			z += e
		}
		for j := range row {
			prob[r*c+j] /= z
		}
		s += -(float64(row[lab[r]]) - m - math.Log(z))
	}
	out := g.newTensorNoZero()
	out.Data()[0] = float32(s / float64(n))
	inputs := g.varList(logits)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().xent.take()
	*op = xentOp{prob: prob, labels: lab, n: n, c: c}
	return g.push(out, inputs, nil, op), nil
}

// xentOp is CrossEntropy's backward.
type xentOp struct {
	prob   []float64
	labels []int
	n, c   int
}

func (o *xentOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	n, c := o.n, o.c
	k := float64(gy.Data()[0]) / float64(n)
	dx := gin[0].Data()
	for r := 0; r < n; r++ {
		for j := 0; j < c; j++ {
			p := o.prob[r*c+j]
			if j == o.labels[r] {
				p--
			}
			dx[r*c+j] += float32(k * p)
		}
	}
}

// selection returns a copy of idx that g owns (a loss's selected indices,
// kept for backward), or 0..n-1 when idx is nil. idx itself is only read,
// so a caller's literal can stay on its stack.
func (g *Graph) selection(idx []int, n int) []int {
	if idx == nil {
		sel := g.newInts(n)
		for i := range sel {
			sel[i] = i
		}
		return sel
	}
	return append(g.newInts(len(idx))[:0], idx...)
}
