package nn

import "github.com/detlab/detlab/lib/tensor"

// backwardOp is the allocation-free form of a BackwardFunc for this
// package's own ops. A closure that captures its operands is one heap
// allocation per recorded op (about 75 per Faster R-CNN training step);
// an op instead records a pointer to a small struct holding its operands,
// taken from its graph's free lists (graphOps), which a graph's
// bookkeeping set reuses step after step. Graph.Op keeps taking closures
// for code outside the package.
type backwardOp interface {
	// backward has BackwardFunc's contract.
	backward(gradOut *tensor.Tensor, gradIns []*tensor.Tensor)
}

// opChunk is how many op structs of one kind a chunk holds.
const opChunk = 32

// opList hands out *T from chunks it keeps across graphs: reset makes
// them all available again.
type opList[T any] struct {
	chunks [][]T
	free   []T // unused part of the current chunk
	used   int // chunks handed out, the current included
}

// take returns a *T with undefined contents (the caller assigns every
// field).
func (l *opList[T]) take() *T {
	if len(l.free) == 0 {
		if l.used < len(l.chunks) {
			l.free = l.chunks[l.used]
		} else {
			l.free = make([]T, opChunk)
			l.chunks = append(l.chunks, l.free)
		}
		l.used++
	}
	p := &l.free[0]
	l.free = l.free[1:]
	return p
}

// reset zeroes the structs handed out (they hold tensors and a graph that
// a pooled set must not keep alive) and makes every chunk available.
func (l *opList[T]) reset() {
	for _, c := range l.chunks[:l.used] {
		clear(c)
	}
	l.free, l.used = nil, 0
}

// graphOps holds one free list per kind of recorded op.
type graphOps struct {
	conv     opList[convOp]
	convBN   opList[convBNOp]
	bn       opList[bnOp]
	linear   opList[linearOp]
	add      opList[addOp]
	relu     opList[reluOp]
	scale    opList[scaleOp]
	mul      opList[mulOp]
	reduce   opList[reduceOp]
	sigmoid  opList[sigmoidOp]
	index    opList[indexOp]
	maxPool  opList[maxPoolOp]
	avgPool  opList[avgPoolOp]
	bce      opList[bceOp]
	smoothL1 opList[smoothL1Op]
	xent     opList[xentOp]
}

func (o *graphOps) reset() {
	o.conv.reset()
	o.convBN.reset()
	o.bn.reset()
	o.linear.reset()
	o.add.reset()
	o.relu.reset()
	o.scale.reset()
	o.mul.reset()
	o.reduce.reset()
	o.sigmoid.reset()
	o.index.reset()
	o.maxPool.reset()
	o.avgPool.reset()
	o.bce.reset()
	o.smoothL1.reset()
	o.xent.reset()
}

// opLists returns the free lists g's ops take their backward structs
// from: its bookkeeping set's (recycled by the arena) or, without an
// arena, the graph's own.
func (g *Graph) opLists() *graphOps {
	if g.books != nil {
		return &g.books.ops
	}
	if g.ops == nil {
		g.ops = new(graphOps)
	}
	return g.ops
}

// records reports whether an op on inputs is recorded: g records and
// some input requires a gradient.
func (g *Graph) records(inputs []*Var) bool {
	if !g.grad {
		return false
	}
	for _, in := range inputs {
		if in.RequiresGrad() {
			return true
		}
	}
	return false
}

// constant wraps out as an op's result that is not recorded.
func (g *Graph) constant(out *tensor.Tensor) *Var {
	v := g.newVar()
	v.Value, v.g = out, g
	return v
}

// push records an op (fn or op, the other nil) whose inputs records has
// accepted and returns its output.
func (g *Graph) push(out *tensor.Tensor, inputs []*Var, fn BackwardFunc, op backwardOp) *Var {
	v := g.constant(out)
	v.requiresGrad = true
	g.tape = append(g.tape, record{out: v, inputs: inputs, backward: fn, op: op})
	return v
}

// gradData returns t's data, or nil for a nil t (an input that needs no
// gradient).
func gradData(t *tensor.Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.Data()
}
