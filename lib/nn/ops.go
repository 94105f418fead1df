package nn

import (
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/tensor"
)

// ReLU returns max(x, 0); NaN propagates. The gradient passes where the
// output is positive. On a backend that implements ElementwiseBackend both
// passes run there.
func ReLU(g *Graph, x *Var) *Var {
	out := g.newTensorNoZero(x.Shape()...)
	xd, od := x.Value.Data(), out.Data()
	eb := g.elementwise()
	if eb != nil {
		eb.ReLU(xd, od)
	} else {
		g.hostSync()
		for i, v := range xd {
			if !(v > 0) && v == v {
				v = 0
			}
			od[i] = v
		}
	}
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out)
	}
	op := g.opLists().relu.take()
	*op = reluOp{eb: eb, out: od}
	return g.push(out, inputs, nil, op)
}

// reluOp is ReLU's backward.
type reluOp struct {
	eb  ElementwiseBackend
	out []float32
}

func (o *reluOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	dx, od := gin[0].Data(), o.out
	if o.eb != nil {
		o.eb.ReLUBackward(od, gy.Data(), dx)
		return
	}
	for i, d := range gy.Data() {
		if od[i] > 0 {
			dx[i] += d
		}
	}
}

// Add returns a + b (same shapes). On a backend that implements
// ElementwiseBackend the sum and its backward run there.
func Add(g *Graph, a, b *Var) (*Var, error) { return add(g, a, b, false) }

// AddReLU returns max(a + b, 0) in one pass (ResNet's residual join); NaN
// propagates. On a backend that implements ElementwiseBackend both passes
// run there.
func AddReLU(g *Graph, a, b *Var) (*Var, error) { return add(g, a, b, true) }

func add(g *Graph, a, b *Var, relu bool) (*Var, error) {
	if !tensor.SameShape(a.Shape(), b.Shape()) {
		return nil, fmt.Errorf("nn: Add: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	out := g.newTensorNoZero(a.Shape()...)
	ad, bd, od := a.Value.Data(), b.Value.Data(), out.Data()
	eb := g.elementwise()
	if eb != nil {
		eb.Add(ad, bd, od, relu)
	} else {
		g.hostSync()
		runPooled(len(od)/4096+1, &addJobs, addJob{a: ad, b: bd, out: od, relu: relu})
	}
	inputs := g.varList(a, b)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().add.take()
	*op = addOp{eb: eb, out: od, relu: relu}
	return g.push(out, inputs, nil, op), nil
}

// addOp is Add's and AddReLU's backward.
type addOp struct {
	eb   ElementwiseBackend
	out  []float32
	relu bool
}

func (o *addOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	eb, od, relu := o.eb, o.out, o.relu
	for _, dx := range gin {
		if dx == nil {
			continue
		}
		d := dx.Data()
		switch {
		case eb != nil && relu:
			eb.ReLUBackward(od, gy.Data(), d)
		case eb != nil:
			eb.Add(d, gy.Data(), d, false) // d += gy
		default:
			for i, v := range gy.Data() {
				if !relu || od[i] > 0 {
					d[i] += v
				}
			}
		}
	}
}

// addJob is add's forward over blocks [c0, c1) of 4096 elements.
type addJob struct {
	a, b, out []float32
	relu      bool
}

var addJobs freelist.List[addJob]

func (j *addJob) run(c0, c1 int) {
	lo, hi := c0*4096, min(c1*4096, len(j.out))
	a, b, od := j.a[lo:hi], j.b[lo:hi], j.out[lo:hi]
	for i := range od {
		v := a[i] + b[i]
		if j.relu && !(v > 0) && v == v {
			v = 0
		}
		od[i] = v
	}
}

// MulScalar returns s * x.
func MulScalar(g *Graph, x *Var, s float32) *Var {
	out := g.newTensorNoZero(x.Shape()...)
	g.hostSync()
	for i, v := range x.Value.Data() {
		out.Data()[i] = s * v
	}
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out)
	}
	op := g.opLists().scale.take()
	*op = scaleOp{s: s}
	return g.push(out, inputs, nil, op)
}

// scaleOp is MulScalar's backward.
type scaleOp struct{ s float32 }

func (o *scaleOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	dx := gin[0].Data()
	for i, v := range gy.Data() {
		dx[i] += o.s * v
	}
}

// Mul returns the elementwise product a * b (same shapes).
func Mul(g *Graph, a, b *Var) (*Var, error) {
	if !tensor.SameShape(a.Shape(), b.Shape()) {
		return nil, fmt.Errorf("nn: Mul: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	out := g.newTensorNoZero(a.Shape()...)
	g.hostSync()
	ad, bd := a.Value.Data(), b.Value.Data()
	for i := range out.Data() {
		out.Data()[i] = ad[i] * bd[i]
	}
	inputs := g.varList(a, b)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().mul.take()
	*op = mulOp{a: ad, b: bd}
	return g.push(out, inputs, nil, op), nil
}

// mulOp is Mul's backward.
type mulOp struct{ a, b []float32 }

func (o *mulOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	if gin[0] != nil {
		d := gin[0].Data()
		for i, v := range gy.Data() {
			d[i] += v * o.b[i]
		}
	}
	if gin[1] != nil {
		d := gin[1].Data()
		for i, v := range gy.Data() {
			d[i] += v * o.a[i]
		}
	}
}

// Sum returns the sum of all elements as a scalar (shape []), accumulated
// in float64.
func Sum(g *Graph, x *Var) *Var { return reduce(g, x, 1) }

// Mean returns the mean of all elements as a scalar; the mean of an empty
// tensor is NaN, as in torch.
func Mean(g *Graph, x *Var) *Var {
	n := x.Value.Len()
	return reduce(g, x, 1/float64(n))
}

func reduce(g *Graph, x *Var, scale float64) *Var {
	var s float64
	for _, v := range x.Value.Data() {
		s += float64(v)
	}
	out := g.newTensorNoZero()
	g.hostSync()
	out.Data()[0] = float32(s * scale)
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out)
	}
	op := g.opLists().reduce.take()
	*op = reduceOp{scale: scale}
	return g.push(out, inputs, nil, op)
}

// reduceOp is Sum's and Mean's backward.
type reduceOp struct{ scale float64 }

func (o *reduceOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	d := float32(float64(gy.Data()[0]) * o.scale)
	dx := gin[0].Data()
	for i := range dx {
		dx[i] += d
	}
}

// Reshape returns x with a new shape (one dimension may be -1); the value
// shares x's data.
func Reshape(g *Graph, x *Var, shape ...int) (*Var, error) {
	out, err := g.reshaped(x.Value, shape)
	if err != nil {
		return nil, fmt.Errorf("nn: Reshape: %w", err)
	}
	return g.viewOp(out, x), nil
}

// reshaped is x.Reshape(shape...) through g's tensor cache (g.tensorOf),
// with the shape resolved on the stack: a training step's reshapes then
// allocate nothing. Shapes it does not resolve (more than six dimensions,
// invalid ones) go to tensor.Reshape, for its result or its error, as a
// copy (tensor.Reshape keeps its argument reachable, which would move
// every caller's shape array to the heap).
func (g *Graph) reshaped(x *tensor.Tensor, shape []int) (*tensor.Tensor, error) {
	var buf [6]int
	if len(shape) > len(buf) {
		return x.Reshape(copyShape(shape)...)
	}
	dims := buf[:len(shape)]
	copy(dims, shape)
	infer, known := -1, 1
	for i, d := range dims {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			return x.Reshape(copyShape(shape)...)
		default:
			known *= d
		}
	}
	if infer >= 0 && known != 0 && x.Len()%known == 0 {
		dims[infer] = x.Len() / known
		known *= dims[infer]
	}
	if infer >= 0 && dims[infer] == -1 || known != x.Len() {
		return x.Reshape(copyShape(shape)...)
	}
	return g.tensorOf(x.Data(), dims), nil
}

// Sigmoid returns 1/(1+exp(-x)) elementwise.
func Sigmoid(g *Graph, x *Var) *Var {
	out := g.newTensorNoZero(x.Shape()...)
	g.hostSync()
	od := out.Data()
	for i, v := range x.Value.Data() {
		od[i] = sigmoid(v)
	}
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out)
	}
	op := g.opLists().sigmoid.take()
	*op = sigmoidOp{out: od}
	return g.push(out, inputs, nil, op)
}

// sigmoidOp is Sigmoid's backward.
type sigmoidOp struct{ out []float32 }

func (o *sigmoidOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	dx, od := gin[0].Data(), o.out
	for i, v := range gy.Data() {
		dx[i] += v * od[i] * (1 - od[i])
	}
}

func sigmoid(v float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(v))))
}

// Softmax returns the softmax over the last dimension of a 2-D x. It is
// for inference (post-processing) and records no gradient.
func Softmax(g *Graph, x *Var) (*Var, error) {
	if x.Value.Dims() != 2 {
		return nil, fmt.Errorf("nn: Softmax: input must be 2-D, got shape %v", x.Shape())
	}
	rows, cols := x.Shape()[0], x.Shape()[1]
	out := g.newTensorNoZero(rows, cols)
	g.hostSync()
	xd, od := x.Value.Data(), out.Data()
	for r := range rows {
		row := xd[r*cols : (r+1)*cols]
		m := float32(math.Inf(-1))
		for _, v := range row {
			if v > m || v != v {
				m = v
			}
		}
		var s float64
		for j, v := range row {
			e := math.Exp(float64(v - m))
			od[r*cols+j] = float32(e)
			s += e
		}
		for j := range row {
			od[r*cols+j] = float32(float64(od[r*cols+j]) / s)
		}
	}
	return g.Input(out), nil
}

// IndexSelect returns the rows idx of x along dimension 0 (torch's
// index_select(0, idx) / x[idx]); repeated indices are allowed and their
// gradients add up (scatter-add backward).
func IndexSelect(g *Graph, x *Var, idx []int) (*Var, error) {
	if x.Value.Dims() < 1 {
		return nil, fmt.Errorf("nn: IndexSelect: scalar input")
	}
	rows := x.Shape()[0]
	row := 0
	if rows > 0 {
		row = x.Value.Len() / rows
	}
	for _, i := range idx {
		if i < 0 || i >= rows {
			return nil, fmt.Errorf("nn: IndexSelect: index %d out of range for %d rows", i, rows)
		}
	}
	var buf [6]int
	shape := buf[:0]
	if x.Value.Dims() > len(buf) {
		shape = nil // more dimensions than the stack array holds
	}
	shape = append(append(shape, len(idx)), x.Shape()[1:]...)
	out := g.newTensorNoZero(shape...)
	g.hostSync()
	xd, od := x.Value.Data(), out.Data()
	for j, i := range idx {
		copy(od[j*row:(j+1)*row], xd[i*row:(i+1)*row])
	}
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().index.take()
	*op = indexOp{idx: append(g.newInts(len(idx))[:0], idx...), row: row}
	return g.push(out, inputs, nil, op), nil
}

// indexOp is IndexSelect's backward (a scatter-add).
type indexOp struct {
	idx []int
	row int
}

func (o *indexOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	dx, d, row := gin[0].Data(), gy.Data(), o.row
	for j, i := range o.idx {
		dst := dx[i*row : (i+1)*row]
		for k, v := range d[j*row : (j+1)*row] {
			dst[k] += v
		}
	}
}
