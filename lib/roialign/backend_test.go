package roialign

import (
	"errors"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// recordingBackend is an nn.Backend with RoIAlign (Backend): it records
// the arguments it gets and runs the host kernels, or fails with err.
type recordingBackend struct {
	nn.CPU
	forward, backward int
	feats             [][]float32 // the features (or output gradients) it was given
	err               error
}

func (b *recordingBackend) RoIAlignForward(out, features []float32, s Shape, rois []float32, cfg Config) error {
	b.forward++
	b.feats = append(b.feats, slices.Clone(features))
	if b.err != nil {
		return b.err
	}
	return ForwardSlice(out, features, s, rois, cfg)
}

func (b *recordingBackend) RoIAlignBackward(gradFeatures, gradOut []float32, s Shape, rois []float32, cfg Config) error {
	b.backward++
	b.feats = append(b.feats, slices.Clone(gradOut))
	if b.err != nil {
		return b.err
	}
	return BackwardSlice(gradFeatures, gradOut, s, rois, cfg)
}

// applyOn runs Apply and a backward of sum(out*gy) on a graph over be.
func applyOn(t *testing.T, be nn.Backend, p nn.Precision, feat, rois, gy *tensor.Tensor) (out, grad []float32) {
	t.Helper()
	g := nn.NewGraph().WithBackend(be).WithAutocast(p)
	f := g.Leaf(feat.Clone(), true)
	o, err := Apply(g, f, rois, Defaults(1.0/8))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := nn.Mul(g, o, g.Input(gy))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, prod)); err != nil {
		t.Fatal(err)
	}
	return o.Value.Data(), f.Grad.Data()
}

// TestApplyUsesBackend: Apply hands forward and backward to a graph
// backend that implements Backend, with the operands the host kernels
// would get (rounded under autocast), and the results are the host's.
func TestApplyUsesBackend(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	s := Shape{N: 2, C: 3, H: 10, W: 12}
	feat := tensor.MustFromSlice(randData(r, s.numel()), s.N, s.C, s.H, s.W)
	rois := tensor.MustFromSlice(randRois(r, 6, s.N, 80, 96), 6, 5)
	gy := tensor.MustFromSlice(randData(r, 6*s.C*49), 6, s.C, 7, 7)
	for _, p := range []nn.Precision{nn.Float32, nn.BFloat16} {
		wantOut, wantGrad := applyOn(t, nn.CPU{}, p, feat, rois, gy)
		be := &recordingBackend{}
		out, grad := applyOn(t, be, p, feat, rois, gy)
		if be.forward != 1 || be.backward != 1 {
			t.Fatalf("%v: backend ran %d forwards and %d backwards, want 1 and 1", p, be.forward, be.backward)
		}
		if !slices.Equal(out, wantOut) || !slices.Equal(grad, wantGrad) {
			t.Errorf("%v: results through the backend differ from the host's", p)
		}
		round := func(x []float32) []float32 {
			y := slices.Clone(x)
			p.RoundSlice(y, y)
			return y
		}
		if !slices.Equal(be.feats[0], round(feat.Data())) || !slices.Equal(be.feats[1], round(gy.Data())) {
			t.Errorf("%v: the backend got operands other than the (rounded) features and output gradient", p)
		}
	}
}

// TestApplyBackendErrors: a forward error of the backend is returned by
// Apply; one in backward (which has no error result) panics naming it.
func TestApplyBackendErrors(t *testing.T) {
	boom := errors.New("device lost")
	feat := tensor.MustFromSlice(make([]float32, 2*4*4), 1, 2, 4, 4)
	rois := tensor.MustFromSlice([]float32{0, 0, 0, 16, 16}, 1, 5)

	g := nn.NewGraph().WithBackend(&recordingBackend{err: boom})
	if _, err := Apply(g, g.Leaf(feat, true), rois, Defaults(1.0/8)); !errors.Is(err, boom) {
		t.Errorf("Apply with a failing backend: err = %v, want %v", err, boom)
	}

	be := &recordingBackend{}
	g = nn.NewGraph().WithBackend(be)
	o, err := Apply(g, g.Leaf(feat, true), rois, Defaults(1.0/8))
	if err != nil {
		t.Fatal(err)
	}
	be.err = boom
	defer func() {
		r := recover()
		e, ok := r.(error)
		if !ok || !errors.Is(e, boom) || !strings.Contains(e.Error(), "roialign: backward") {
			t.Errorf("backward with a failing backend: panic %v, want an error wrapping %v", r, boom)
		}
	}()
	_ = g.Backward(nn.Sum(g, o))
	t.Error("backward with a failing backend did not panic")
}
