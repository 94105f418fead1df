package nn

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/detlab/detlab/lib/tensor"
)

var sqrt5 = math.Sqrt(5)

func sqrtf(v float64) float64 { return math.Sqrt(v) }

// joinName joins a module name and a parameter name with a dot.
func joinName(module, param string) string {
	if module == "" {
		return param
	}
	return module + "." + param
}

// Linear is torch.nn.Linear: y = x W^T + b with W shaped (out, in).
type Linear struct {
	In, Out int
	Weight  *Param
	Bias    *Param // nil without bias
}

// NewLinear returns a Linear initialised as torch does:
// kaiming_uniform_(a=sqrt(5)) weight, U(-1/sqrt(in), 1/sqrt(in)) bias.
func NewLinear(name string, in, out int, bias bool, rng *rand.Rand) (*Linear, error) {
	if in <= 0 || out <= 0 {
		return nil, fmt.Errorf("nn: Linear %s: bad sizes in=%d out=%d", name, in, out)
	}
	l := &Linear{In: in, Out: out, Weight: NewParam(joinName(name, "weight"), out, in)}
	KaimingUniform(l.Weight.Value, in, sqrt5, rng)
	if bias {
		l.Bias = NewParam(joinName(name, "bias"), out)
		b := 1 / math.Sqrt(float64(in))
		Uniform(l.Bias.Value, -b, b, rng)
	}
	return l, nil
}

// OutputShape returns (N, out) for an input (N, in).
func (l *Linear) OutputShape(in []int) ([]int, error) {
	if err := l.checkInput(in); err != nil {
		return nil, err
	}
	return []int{in[0], l.Out}, nil
}

// checkInput reports an input shape that is not (N, in).
func (l *Linear) checkInput(in []int) error {
	if len(in) != 2 {
		return fmt.Errorf("nn: Linear %s: input must be (N, %d), got shape %v", l.Weight.Name, l.In, in)
	}
	if in[1] != l.In {
		return fmt.Errorf("nn: Linear %s: input has %d features, want %d", l.Weight.Name, in[1], l.In)
	}
	return nil
}

// linearGemm runs Linear's products on a backend, in reduced precision
// through pb when set: a value the backward op holds, where a method value
// or a closure of its own would be one more heap object per forward.
type linearGemm struct {
	b  Backend
	pb PrecisionBackend
	ac Precision
}

func (lg linearGemm) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if lg.pb != nil {
		lg.pb.GemmPrecision(lg.ac, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	lg.b.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Forward applies the layer.
func (l *Linear) Forward(g *Graph, x *Var) (*Var, error) {
	if err := l.checkInput(x.Shape()); err != nil {
		return nil, err
	}
	n := x.Shape()[0]
	out := g.newTensorNoZero(n, l.Out)
	od := out.Data()
	w, xd := l.Weight.Value.Data(), x.Value.Data()
	ac := g.autocast
	lg := linearGemm{b: g.backend}
	switch pb := nativeBackend(g.backend, ac); {
	case ac == Float32:
	case pb != nil: // the backend rounds while it packs
		lg.pb, lg.ac = pb, ac
	default:
		xd = g.roundedCopy(xd, x.Shape()...)
		w = g.roundedCopy(w, l.Weight.Value.Shape()...)
	}
	if n > 0 {
		lg.gemm(false, true, n, l.Out, l.In, 1, xd, l.In, w, l.In, 0, od, l.Out)
	}
	var bv *Var
	if l.Bias != nil {
		bv = g.Param(l.Bias)
		g.biasAdd(od, l.Bias.Value.Data(), n, l.Out)
	}
	inputs := g.varList(x, g.Param(l.Weight), bv)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().linear.take()
	*op = linearOp{g: g, lg: lg, xd: xd, w: w, n: n, in: l.In, out: l.Out, ac: ac}
	return g.push(out, inputs, nil, op), nil
}

// linearOp is Linear's backward: inputs x, weight, bias.
type linearOp struct {
	g          *Graph
	lg         linearGemm
	xd, w      []float32
	n, in, out int
	ac         Precision
}

func (o *linearOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	g, n, in, out := o.g, o.n, o.in, o.out
	dy := gy.Data()
	if n == 0 {
		return
	}
	if o.ac != Float32 {
		// Rounded here on both paths: the bias gradient sums the
		// reduced-precision dy, as torch's does.
		s := g.scratch()
		r := s.Get(len(dy))
		defer s.Put(r)
		g.roundAs(o.ac, r, dy)
		dy = r
	}
	if gin[0] != nil {
		o.lg.gemm(false, false, n, in, out, 1, dy, out, o.w, in, 1, gin[0].Data(), in)
	}
	if gin[1] != nil {
		o.lg.gemm(true, false, out, in, n, 1, dy, out, o.xd, in, 1, gin[1].Data(), in)
	}
	if gin[2] != nil {
		g.biasGrad(dy, gin[2].Data(), n, out)
	}
}

// Params returns the weight and, if present, the bias.
func (l *Linear) Params() []*Param {
	if l.Bias == nil {
		return []*Param{l.Weight}
	}
	return []*Param{l.Weight, l.Bias}
}

// AddState adds weight (and bias) under prefix.
func (l *Linear) AddState(sd *StateDict, prefix string) {
	sd.AddParam(prefix+"weight", l.Weight)
	if l.Bias != nil {
		sd.AddParam(prefix+"bias", l.Bias)
	}
}
