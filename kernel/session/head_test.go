package session

import (
	"strings"
	"testing"
)

// TestEditHeadKeepsTrainedBackbone is the product's loop, as a user runs it:
// define an RPN head type in a cell, train a Faster R-CNN with it, edit the
// head's method, rebuild the model around the edited head and the trained
// backbone, and train again. The interpreted head must satisfy the library's
// compiled rpn.Head interface (through the generated wrappers), the edit must
// take effect, and the backbone trained before the edit must be kept.
func TestEditHeadKeepsTrainedBackbone(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small ResNet18 Faster R-CNN")
	}
	s := newSession(t)
	mustRun(t, s, `
import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

type MyHead struct{ Conv, Cls, Box *nn.Conv2d }

func (h *MyHead) Forward(g *nn.Graph, f *nn.Var) (*nn.Var, *nn.Var, error) {
	fmt.Println("head v1")
	x, err := h.Conv.Forward(g, f)
	if err != nil {
		return nil, nil, err
	}
	x = nn.ReLU(g, x)
	o, err := h.Cls.Forward(g, x)
	if err != nil {
		return nil, nil, err
	}
	d, err := h.Box.Forward(g, x)
	return o, d, err
}

func (h *MyHead) Params() []*nn.Param {
	return append(append(h.Conv.Params(), h.Cls.Params()...), h.Box.Params()...)
}

func (h *MyHead) AddState(sd *nn.StateDict, prefix string) {
	h.Conv.AddState(sd, prefix+"conv.")
	h.Cls.AddState(sd, prefix+"cls_logits.")
	h.Box.AddState(sd, prefix+"bbox_pred.")
}

func newHead(a int) *MyHead {
	rng := rand.New(rand.NewSource(1))
	c, _ := nn.NewConv2d("conv", 512, 32, 3, 1, 1, true, rng)
	cl, _ := nn.NewConv2d("cls_logits", 32, a, 1, 1, 0, true, rng)
	bx, _ := nn.NewConv2d("bbox_pred", 32, 4*a, 1, 1, 0, true, rng)
	return &MyHead{c, cl, bx}
}

func config(backbone fasterrcnn.Backbone) fasterrcnn.Config {
	cfg := fasterrcnn.Defaults(3)
	cfg.MinSize, cfg.MaxSize = 64, 64
	cfg.RepresentationSize = 16
	cfg.RPNHead = newHead(cfg.Anchors.NumAnchorsPerLocation())
	cfg.Backbone = backbone
	return cfg
}

func step(m *fasterrcnn.Model) float32 {
	img := tensor.New(3, 64, 64)
	for i := range img.Data() {
		img.Data()[i] = float32(i%7) / 7
	}
	targets := []fasterrcnn.Target{{Boxes: []box.Box{box.New(4, 4, 40, 40)}, Labels: []int{1}}}
	m.Train()
	l, err := m.Losses(ctx, []*tensor.Tensor{img}, targets)
	if err != nil {
		panic(err)
	}
	if err := l.Backward(); err != nil {
		panic(err)
	}
	for _, p := range m.Params() {
		for i, g := range p.Grad.Data() {
			p.Value.Data()[i] -= 0.01 * g
		}
	}
	m.ZeroGrad()
	return l.Values()["loss"]
}

func backboneSum(m *fasterrcnn.Model) float64 {
	var s float64
	for _, p := range m.Backbone.Params() {
		for _, v := range p.Value.Data() {
			s += float64(v)
		}
	}
	return s
}
`)
	_, r := mustRun(t, s, `
m, err := fasterrcnn.New(config(nil))
if err != nil {
	panic(err)
}
loss := step(m)
trained := backboneSum(m)
fmt.Println("loss>0:", loss > 0)
`)
	if out := r.out(); !strings.Contains(out, "head v1") || !strings.Contains(out, "loss>0: true") {
		t.Fatalf("first training cell printed %q", out)
	}

	// The edit: the same cell text with the method changed.
	_, r = mustRun(t, s, `
func (h *MyHead) Forward(g *nn.Graph, f *nn.Var) (*nn.Var, *nn.Var, error) {
	fmt.Println("head v2")
	x, err := h.Conv.Forward(g, f)
	if err != nil {
		return nil, nil, err
	}
	o, err := h.Cls.Forward(g, x)
	if err != nil {
		return nil, nil, err
	}
	d, err := h.Box.Forward(g, x)
	return o, d, err
}
`)
	text, r := mustRun(t, s, `
same := backboneSum(m) == trained
m2, err := fasterrcnn.New(config(m.Backbone))
if err != nil {
	panic(err)
}
step(m2)
same
`)
	if out := r.out(); !strings.Contains(out, "head v2") || strings.Contains(out, "head v1") {
		t.Errorf("after the edit, training printed %q: want the edited head (v2) only", out)
	}
	if text != "true" {
		t.Errorf("trained backbone kept across the head edit: got %q, want true (stderr: %s)", text, r.errs())
	}
}
