package nn

import (
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// testDerived is a Derived recording which build made it.
type testDerived struct{ build int }

func (testDerived) DerivedBytes() int64 { return 8 }

func TestWeightCacheGet(t *testing.T) {
	p := NewParam("w", 4, 5)
	Uniform(p.Value, -1, 1, rand.New(rand.NewSource(1)))
	builds := 0
	get := func(extra []float32) int {
		t.Helper()
		v, err := p.Cache().Get("k", extra, func() (Derived, error) {
			builds++
			return testDerived{builds}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v.(testDerived).build
	}
	steps := []struct {
		name    string
		change  func()
		extra   []float32
		rebuild bool
	}{
		{"first use", func() {}, nil, true},
		{"unchanged", func() {}, nil, false},
		{"MarkChanged", func() { p.MarkChanged() }, nil, true},
		{"unchanged again", func() {}, nil, false},
		{"extra given", func() {}, []float32{1, 2}, true},
		{"same extra", func() {}, []float32{1, 2}, false},
		{"other extra", func() {}, []float32{1, 3}, true},
		{"Value replaced", func() { p.Value = p.Value.Clone() }, []float32{1, 3}, true},
		{"storage replaced", func() {
			*p.Value = *tensor.MustFromSlice(append([]float32(nil), p.Value.Data()...), p.Value.Shape()...)
		}, []float32{1, 3}, true},
		// Not a contract (writers must mark), a guard: a whole rewrite
		// without MarkChanged changes the sampled values.
		{"unmarked rewrite", func() { Uniform(p.Value, -1, 1, rand.New(rand.NewSource(2))) }, []float32{1, 3}, true},
	}
	last := 0
	for _, s := range steps {
		s.change()
		got := get(s.extra)
		if rebuilt := got != last; rebuilt != s.rebuild {
			t.Errorf("%s: rebuilt=%v, want %v", s.name, rebuilt, s.rebuild)
		}
		last = got
	}
	if n := p.Cache().Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	if b := p.Cache().Bytes(); b != 8 {
		t.Errorf("Bytes = %d, want 8", b)
	}
	DropWeightCaches([]*Param{p})
	if n := p.Cache().Len(); n != 0 {
		t.Errorf("Len after Drop = %d", n)
	}
}

func TestVersionWriters(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	conv, err := NewConv2d("conv", 2, 3, 3, 1, 1, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	bn := newRandomBN(t, rng, 3, BNEval)
	sd := NewStateDict()
	conv.AddState(sd, "conv.")
	bn.AddState(sd, "bn.")
	x := randTensor(rng, 0, 2, 3, 4, 4)
	writers := []struct {
		name    string
		write   func() error
		changed func() uint64 // the version that must move
	}{
		{"Param.MarkChanged", func() error { conv.Weight.MarkChanged(); return nil }, conv.Weight.Version},
		{"StateDict.MarkChanged param", func() error { sd.MarkChanged("conv.bias"); return nil }, conv.Bias.Version},
		{"StateDict.MarkChanged buffer", func() error { sd.MarkChanged("bn.running_var"); return nil }, bn.StatsVersion},
		{"StateDict.MarkChanged all", func() error { sd.MarkChanged(); return nil }, bn.Weight.Version},
		{"CopyState weight", func() error { return CopyState(sd, cloneState(sd)) }, conv.Weight.Version},
		{"CopyState stats", func() error { return CopyState(sd, cloneState(sd)) }, bn.StatsVersion},
		{"BN train forward", func() error {
			bn.SetMode(BNTrain)
			defer bn.SetMode(BNEval)
			_, err := bn.Forward(NewInferenceGraph(), NewInferenceGraph().Input(x))
			return err
		}, bn.StatsVersion},
		{"BN version follows gamma", func() error { bn.Weight.MarkChanged(); return nil }, bn.Version},
	}
	for _, w := range writers {
		before := w.changed()
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if after := w.changed(); after == before {
			t.Errorf("%s: version stayed %d", w.name, after)
		}
	}
	if v := conv.Weight.Version(); v != conv.Weight.Version() {
		t.Errorf("Version not stable without changes")
	}
}

// cloneState returns copies of sd's tensors (a CopyState source).
func cloneState(sd *StateDict) map[string]*tensor.Tensor {
	m := map[string]*tensor.Tensor{}
	for _, k := range sd.Keys {
		m[k] = sd.Tensors[k].Clone()
	}
	return m
}

// TestCachedConvFollowsWrites runs fused and plain convolutions whose
// backends cache derived weights, changes the weights or the BatchNorm
// through every writer, and checks each result against a freshly built
// layer with the same values (which has no cache): a stale derived weight
// would show here.
func TestCachedConvFollowsWrites(t *testing.T) {
	for _, tc := range []convBNCase{
		{1, 8, 12, 12, 16, 3, 1, 1, false, false, true},  // Winograd-eligible
		{2, 16, 9, 7, 24, 3, 1, 1, true, true, true},     // Winograd, batch 2, edge tiles
		{1, 5, 11, 11, 12, 3, 2, 1, false, false, true},  // strided: im2col
		{1, 6, 6, 6, 20, 1, 1, 0, false, true, false},    // pointwise
		{1, 64, 14, 14, 64, 3, 1, 1, false, false, true}, // ResNet-like
	} {
		for _, prec := range []Precision{Float32, BFloat16} {
			conv, bn, x, res, _ := tc.setup(t, 5, BNEval)
			rng := rand.New(rand.NewSource(9))
			sd := NewStateDict()
			conv.AddState(sd, "conv.")
			bn.AddState(sd, "bn.")
			run := func(conv *Conv2d, bn *BatchNorm2d) (fused, plain []float32) {
				g := NewInferenceGraph()
				if prec != Float32 {
					g = g.WithAutocast(prec)
				}
				var rv *Var
				if res != nil {
					rv = g.Input(res)
				}
				y, err := ConvBN(g, conv, bn, g.Input(x), rv, tc.relu)
				if err != nil {
					t.Fatal(err)
				}
				z, err := conv.Forward(g, g.Input(x))
				if err != nil {
					t.Fatal(err)
				}
				return y.Value.Clone().Data(), z.Value.Clone().Data()
			}
			fresh := func() (*Conv2d, *BatchNorm2d) {
				c2, err := NewConv2d("conv", tc.c, tc.k, tc.kernel, tc.stride, tc.padding, tc.bias, rng)
				if err != nil {
					t.Fatal(err)
				}
				b2 := newRandomBN(t, rng, tc.k, BNEval)
				sd2 := NewStateDict()
				c2.AddState(sd2, "conv.")
				b2.AddState(sd2, "bn.")
				if err := CopyState(sd2, cloneState(sd)); err != nil {
					t.Fatal(err)
				}
				return c2, b2
			}
			perturb := func(d []float32) {
				for i := range d {
					d[i] *= float32(1.05 + 0.2*rng.Float64()) // keeps variances positive
				}
			}
			writers := []struct {
				name  string
				write func()
			}{
				{"nothing", func() {}},
				{"weight + MarkChanged", func() { perturb(conv.Weight.Value.Data()[:3]); conv.Weight.MarkChanged() }},
				{"weight via StateDict", func() { perturb(sd.Tensors["conv.weight"].Data()[1:2]); sd.MarkChanged("conv.weight") }},
				{"CopyState", func() {
					src := cloneState(sd)
					perturb(src["conv.weight"].Data()[5:6])
					perturb(src["bn.running_var"].Data())
					if err := CopyState(sd, src); err != nil {
						t.Fatal(err)
					}
				}},
				{"Value replaced", func() {
					w := conv.Weight.Value.Clone()
					perturb(w.Data()[:1])
					conv.Weight.Value = w
					sd.Tensors["conv.weight"] = w
				}},
				{"BN gamma + MarkChanged", func() { perturb(bn.Weight.Value.Data()); bn.Weight.MarkChanged() }},
				{"BN stats by train forward", func() {
					bn.SetMode(BNTrain)
					g := NewInferenceGraph()
					if _, err := bn.Forward(g, g.Input(randTensor(rng, 0, 2, tc.k, 3, 3))); err != nil {
						t.Fatal(err)
					}
					bn.SetMode(BNEval)
				}},
				{"BN running_mean via StateDict", func() { perturb(sd.Tensors["bn.running_mean"].Data()); sd.MarkChanged("bn.running_mean") }},
			}
			for _, w := range writers {
				w.write()
				gotF, gotP := run(conv, bn)
				c2, b2 := fresh()
				wantF, wantP := run(c2, b2)
				for _, cmp := range []struct {
					what      string
					got, want []float32
				}{{"ConvBN", gotF, wantF}, {"Conv2d", gotP, wantP}} {
					if d, s := maxAbsDiff(cmp.got, cmp.want); d != 0 {
						t.Errorf("%v %v after %s: %s differs from a fresh layer by %g (scale %g)", tc, prec, w.name, cmp.what, d, s)
					}
				}
			}
		}
	}
}
