package nn_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/tensor"
)

// nativeBackendOff is the CPU backend with native reduced precision turned
// off: the emulated autocast path.
type nativeBackendOff struct{ nn.CPU }

func (nativeBackendOff) NativePrecision(nn.Precision) bool { return false }

func relL2(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

// resnetLogits runs the golden ResNet18 in eval mode on the golden input
// on backend be under precision p and returns the stem's output, layer4
// and the logits.
func resnetLogits(t *testing.T, be nn.Backend, p nn.Precision) (stem, layer4, logits []float32) {
	t.Helper()
	wf := golden.Load(t, "resnet18.safetensors")
	io := golden.Load(t, "resnet18_io.safetensors")
	m, err := resnet.New18(golden.Entry(t, wf, "fc.weight").Shape[0], rand.New(rand.NewSource(0)))
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]*tensor.Tensor{}
	for _, k := range wf.Names {
		src[k] = wf.Entries[k].Tensor().Clone()
	}
	if err := nn.CopyState(m.StateDict(), src); err != nil {
		t.Fatal(err)
	}
	x := golden.Entry(t, io, "x").Tensor()
	g := nn.NewInferenceGraph().WithBackend(be).WithAutocast(p)
	f, err := m.Features(g, g.Input(x), 4)
	if err != nil {
		t.Fatal(err)
	}
	_, lg, err := m.Head(g, f.Layer4)
	if err != nil {
		t.Fatal(err)
	}
	return f.Stem.Value.Data(), f.Layer4.Value.Data(), lg.Value.Data()
}

// TestAutocastResNet18Golden runs the golden ResNet18 (eval) under
// bfloat16 autocast, natively where the CPU can and emulated, against the
// float32 goldens.
//
// Tolerance: each of the 21 products rounds its two operands to bfloat16
// (rel-L2 about 2^-8 sqrt(2/3) per layer; TestAutocastCloseToFloat32 allows
// 4 x 2^-8 per layer); through the network such errors add up roughly as a
// random walk, so layer4 and the logits must stay within 4 x 2^-8 x sqrt(21)
// = 7e-2 of float32, and must differ from it (the rounding is applied).
//
// Native against emulated: the stem (one convolution of the same rounded
// operands, k = 147) may differ only by float32 summation order (nativeTol,
// 1e-5). Deeper, the two paths drift apart: a summation-order difference
// occasionally flips the bfloat16 rounding of the next layer's input, each
// flip injects a 2^-8 error, and the more they differ the more roundings
// flip, so after 20 layers they differ by a good part of the bfloat16 error
// itself (measured: rel-L2 4e-3 at layer4, 1.4e-3 at the logits, against
// 7.4e-3 and 3.7e-3 from float32). Any change of summation order, such as a
// different GEMM blocking, does the same. So the deep check is that native
// is as close to float32 as emulated: within 25% of its error.
func TestAutocastResNet18Golden(t *testing.T) {
	if testing.Short() {
		t.Skip("three ResNet18 forwards")
	}
	io := golden.Load(t, "resnet18_io.safetensors")
	want4 := golden.Entry(t, io, "eval.layer4").F32Data
	wantLogits := golden.Entry(t, io, "eval.logits").F32Data
	tol := 4.0 / 256 * math.Sqrt(21)
	emuStem, emu4, emuLogits := resnetLogits(t, nativeBackendOff{}, nn.BFloat16)
	eL4, eLg := relL2(emu4, want4), relL2(emuLogits, wantLogits)
	t.Logf("emulated bfloat16 vs float32 golden: layer4 rel-L2 %.3g, logits %.3g (tolerance %.3g)", eL4, eLg, tol)
	for _, e := range []float64{eL4, eLg} {
		if e > tol || e == 0 {
			t.Errorf("emulated bfloat16 rel-L2 %.3g vs float32 golden, want in (0, %.3g]", e, tol)
		}
	}
	if !(nn.CPU{}).NativePrecision(nn.BFloat16) {
		t.Skipf("no native bfloat16 here (%s): %s", compute.CPU(), compute.BF16Backend())
	}
	natStem, nat4, natLogits := resnetLogits(t, nn.CPU{}, nn.BFloat16)
	nL4, nLg := relL2(nat4, want4), relL2(natLogits, wantLogits)
	t.Logf("native bfloat16 vs float32 golden: layer4 rel-L2 %.3g, logits %.3g", nL4, nLg)
	for _, e := range []float64{nL4, nLg} {
		if e > tol || e == 0 {
			t.Errorf("native bfloat16 rel-L2 %.3g vs float32 golden, want in (0, %.3g]", e, tol)
		}
	}
	if d := relL2(natStem, emuStem); d > 1e-5 {
		t.Errorf("stem: native vs emulated rel-L2 %.3g > 1e-5 on the same rounded operands", d)
	}
	t.Logf("native vs emulated: layer4 rel-L2 %.3g, logits %.3g", relL2(nat4, emu4), relL2(natLogits, emuLogits))
	if math.Abs(nL4-eL4) > eL4/4 || math.Abs(nLg-eLg) > eLg/4 {
		t.Errorf("native bfloat16 error (%.3g layer4, %.3g logits) not within 25%% of the emulated one (%.3g, %.3g)", nL4, nLg, eL4, eLg)
	}
}
