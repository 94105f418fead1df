package compute

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// EnvConv is the environment variable that chooses how ConvOneDNN's
// callers convolve: "go" (never oneDNN: ConvOneDNN reports false and the
// caller runs its own im2col + GEMM, or Winograd), unset (go, except
// bfloat16 inference convolutions, below), "onednn"
// (oneDNN's convolution primitives for every convolution, whatever
// implementation oneDNN picks), or "auto": oneDNN, when libdnnl 2.x loads, for convolutions with a
// BatchNorm folded in (Epilogue.Scale set: ResNet's ConvBN in eval or with
// frozen BN) for which it picks a JIT direct AVX-512 implementation
// (brgconv or jit, not its reference or GEMM-based ones, nor its AVX2
// kernels, which were not measured against the Go AVX2 GEMM); the caller's
// own code otherwise. A bfloat16 convolution (ConvShape.BF16) goes to
// oneDNN under auto, whatever its epilogue, where oneDNN picks a JIT
// implementation that multiplies in bfloat16 (avx512_core_bf16, or
// avx512_core_amx on CPUs with AMX); under onednn always; under go never;
// unset, when it belongs to an inference graph (ConvShape.Inference) and
// has an even channel count, libdnnl loaded at the first such call.
// Measured (same machine, 2026-11-30, scripts/bench-ab, six rounds):
// ResNet18's bfloat16 forward at 224 batch 1 takes 12.0 ms that way
// against 16.1 ms on the Go VDPBF16PS GEMM, and 19.5 against 27.0 ms of
// CPU; the 3-channel stem, which oneDNN 2.6 runs only with a zero channel
// added (see bf16PaddedChannels), took 1.7-1.8 ms there against 1.3 on Go,
// and a bfloat16 Faster R-CNN training step was no faster on oneDNN
// (756 against 730 ms), so those stay on Go.
//
// Measured on a Zen 5 EPYC (2 cores, 2026-11-30): ResNet18's convolutions
// at 224x224 batch 1 take 10-12 ms in oneDNN 2.6.3's brgconv including the
// layout reorders, against about 19 ms for im2col + the Go AVX-512 GEMM;
// its GEMM-based convolution on plain NCHW took 16 ms. Plain convolutions
// (a bias at most: detection heads, training's Conv2d) stay on Go under
// auto because oneDNN's different summation order flips the sign of a
// 2.4e-7 RPN pre-activation of the Faster R-CNN training fixture (torch's
// own float32 error there is 1.2e-6) and the ReLU kink moves a backbone
// gradient past its tolerance; DETLAB_CONV=onednn routes them too.
//
// The default keeps float32 on go: end to end, with Winograd taking the
// 3x3 stride-1 convolutions of inference graphs, auto measured no faster
// (detlab-bench, 2026-11-30, same machine: resnet18-fwd-224-b1 17.0 vs
// 17.3 ms, frcnn-infer-320-b1 183 vs 160 ms, frcnn-train-320-b2 1.92-1.99 vs
// 1.85-1.93 s of CPU per step). A steady-state oneDNN convolution call
// allocates nothing (its per-call functions go through purego.SyscallN).
const EnvConv = "DETLAB_CONV"

// ErrConvShape is returned (wrapped) by ConvOneDNN for a ConvShape or
// slice that does not describe a valid convolution.
var ErrConvShape = errors.New("compute: invalid convolution")

// ConvShape is a 2-D convolution's geometry in NCHW, groups 1, dilation 1:
// input (N, C, H, W), weights (K, C, KH, KW), output (N, K, OH, OW) with
// OH = (H + 2*PH - KH)/SH + 1 and OW likewise, and the precision its
// product runs in.
type ConvShape struct {
	N, C, H, W     int
	K, KH, KW      int
	SH, SW, PH, PW int
	OH, OW         int

	// BF16 runs the product in bfloat16, as torch's autocast does: the
	// float32 input and weights are rounded to bfloat16 (nearest, ties to
	// even) while oneDNN reorders them into its blocked layouts, the
	// products are accumulated in float32, and the output and the
	// epilogue (Scale, Shift, Residual, ReLU) stay float32, applied to
	// the float32 sum. false: float32 throughout. See ConvOneDNN and
	// EnvConv for when oneDNN runs a bfloat16 convolution.
	BF16 bool

	// Inference marks a convolution of an inference graph, whose weights
	// stay the same between calls: with EnvConv unset, bfloat16 inference
	// convolutions of an even channel count run on oneDNN where it picks
	// a bfloat16 or AMX kernel. It chooses who computes, not what.
	Inference bool
}

// check returns an error naming the first inconsistency of s with the
// slices given (ep's Scale, Shift and Residual where present).
func (s ConvShape) check(x, w []float32, ep Epilogue, y []float32) error {
	if err := s.checkDims(); err != nil {
		return err
	}
	return s.checkLens(x, w, ep, y)
}

// checkDims returns an error naming the first invalid dimension of s.
func (s ConvShape) checkDims() error {
	for _, d := range []struct {
		name string
		v    int
		min  int
	}{{"N", s.N, 1}, {"C", s.C, 1}, {"H", s.H, 1}, {"W", s.W, 1}, {"K", s.K, 1}, {"KH", s.KH, 1}, {"KW", s.KW, 1},
		{"SH", s.SH, 1}, {"SW", s.SW, 1}, {"PH", s.PH, 0}, {"PW", s.PW, 0}, {"OH", s.OH, 1}, {"OW", s.OW, 1}} {
		if d.v < d.min {
			return fmt.Errorf("%w: %s = %d (want >= %d) in %+v", ErrConvShape, d.name, d.v, d.min, s)
		}
	}
	if oh, ow := (s.H+2*s.PH-s.KH)/s.SH+1, (s.W+2*s.PW-s.KW)/s.SW+1; s.H+2*s.PH < s.KH || s.W+2*s.PW < s.KW || oh != s.OH || ow != s.OW {
		return fmt.Errorf("%w: output %dx%d does not follow from input %dx%d, kernel %dx%d, stride %dx%d, padding %dx%d",
			ErrConvShape, s.OH, s.OW, s.H, s.W, s.KH, s.KW, s.SH, s.SW, s.PH, s.PW)
	}
	return nil
}

// checkLens returns an error naming the first slice too short for s.
func (s ConvShape) checkLens(x, w []float32, ep Epilogue, y []float32) error {
	for _, a := range []struct {
		name string
		got  []float32
		want int
		opt  bool
	}{
		{"x", x, s.N * s.C * s.H * s.W, false},
		{"w", w, s.K * s.C * s.KH * s.KW, false},
		{"y", y, s.N * s.K * s.OH * s.OW, false},
		{"Scale", ep.Scale, s.K, true},
		{"Shift", ep.Shift, s.K, true},
		{"Residual", ep.Residual, s.N * s.K * s.OH * s.OW, true},
	} {
		if a.opt && a.got == nil {
			continue
		}
		if len(a.got) < a.want {
			return fmt.Errorf("%w: len(%s) = %d, want %d for %+v", ErrConvShape, a.name, len(a.got), a.want, s)
		}
	}
	return nil
}

// convMode is the DETLAB_CONV choice.
type convMode int

const (
	convAuto convMode = iota
	convGo
	convForced
	convUnset // go, except bfloat16 inference convolutions (EnvConv)
)

// convChoice is what EnvConv asked for and what loading oneDNN gave.
type convChoice struct {
	mode convMode
	eng  *dnnlConvEngine // nil: oneDNN's convolutions are not used
	name string          // for ConvBackend
}

// convChosen is the choice made at the first call; a variable so that
// tests can swap it.
var convChosen = sync.OnceValue(func() convChoice { return chooseConv(os.Getenv(EnvConv)) })

// chooseConv interprets a DETLAB_CONV value and loads oneDNN's
// convolution API when it may be used.
func chooseConv(env string) convChoice {
	var mode convMode
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "":
		return convChoice{mode: convUnset, name: "go (im2col + Sgemm), bfloat16 inference on oneDNN where libdnnl loads and picks a bf16 or AMX kernel (" + EnvConv + "=go: never oneDNN; auto or onednn: more)"}
	case "auto":
		mode = convAuto
	case "go", "purego", "pure":
		return convChoice{mode: convGo, name: "go (im2col + Sgemm; " + EnvConv + "=go)"}
	case "onednn", "dnnl":
		mode = convForced
	default:
		return convChoice{mode: convGo, name: fmt.Sprintf("go (im2col + Sgemm; unknown %s=%q, want auto, go or onednn)", EnvConv, env)}
	}
	eng, err := loadConvEngine()
	if err != nil {
		return convChoice{mode: convGo, name: fmt.Sprintf("go (im2col + Sgemm; %v)", err)}
	}
	c := convChoice{mode: mode, eng: eng}
	if mode == convForced {
		c.name = fmt.Sprintf("onednn %s convolutions (%s=onednn)", eng.version, EnvConv)
	} else {
		c.name = fmt.Sprintf("onednn %s convolutions for folded-BN ones where it picks a JIT direct one, and bfloat16 ones where it picks a JIT bf16 or AMX one, else im2col + Sgemm", eng.version)
	}
	return c.withBF16Kernel()
}

// ConvBackend says how ConvOneDNN's callers convolve, e.g. "onednn 2.6.3
// convolutions (DETLAB_CONV=onednn; bfloat16 3x3: brgconv:avx512_core_bf16)"
// (the kernel oneDNN picks for a small bfloat16 3x3 convolution: whether
// autocast runs on AVX512_BF16 or AMX) or
// "go (im2col + Sgemm; compute: oneDNN (libdnnl.so.3 or .2) not installed:
// apt-get install libdnnl2 ...)", with the reason when oneDNN is not used.
func ConvBackend() string {
	c := convChosen()
	if c.mode == convUnset && c.eng == nil {
		// Which kernel bfloat16 inference would run on, as the other
		// modes say (this loads libdnnl, once).
		if eng := bf16InferenceEngine(); eng != nil {
			return convChoice{mode: c.mode, eng: eng, name: c.name}.withBF16Kernel().name
		}
		return "go (im2col + Sgemm; bfloat16 inference too: oneDNN's convolutions do not load)"
	}
	return c.name
}

// ConvOneDNN writes y (N,K,OH,OW) = relu(Scale[k]*conv(x, w) + Shift[k] +
// Residual), each part of ep as present (ep.LdResidual is ignored: the
// residual is shaped like y), with one oneDNN convolution primitive over
// the batch, when EnvConv selects oneDNN for this shape. x is (N,C,H,W)
// and w (K,C,KH,KW), both plain row-major float32; y must not alias x or
// ep.Residual. With s.BF16 the product is bfloat16 with float32
// accumulation (x and w rounded to bfloat16), the epilogue float32.
//
// It returns false, with y untouched, when oneDNN is not used for this
// call (see EnvConv and ConvBackend): the caller then runs its own
// convolution. An inconsistent shape or slice gives an error wrapping
// ErrConvShape, also with y untouched. Primitives, and the reorders
// between the caller's NCHW and oneDNN's blocked layouts, are created once
// per shape and epilogue and cached; the weights are reordered on every
// call. Calls are serialised (each already uses every core).
func ConvOneDNN(s ConvShape, x, w []float32, ep Epilogue, y []float32) (bool, error) {
	return ConvOneDNNPrepared(s, x, w, nil, ep, y)
}

// convEngineFor returns the oneDNN engine that may run s under the
// EnvConv choice, nil for none, and whether it must (onednn) rather than
// may (where autoUses agrees).
func convEngineFor(s ConvShape) (eng *dnnlConvEngine, force bool) {
	c := convChosen()
	if c.eng != nil {
		return c.eng, c.mode == convForced
	}
	if c.mode == convUnset && s.BF16 && s.Inference && s.C%2 == 0 {
		return bf16InferenceEngine(), false
	}
	return nil, false
}

// bf16InferenceEngine is oneDNN's convolution API for bfloat16 inference
// convolutions with EnvConv unset, loaded at the first one (nil when
// libdnnl does not load: they then stay on Go).
var bf16InferenceEngine = sync.OnceValue(func() *dnnlConvEngine {
	e, err := loadConvEngine()
	if err != nil {
		return nil
	}
	return e
})

// ConvOneDNNPrepared is ConvOneDNN with the weights already reordered by
// NewOneDNNWeights (for the same shape and epilogue parts, from the same
// values of w): the per-call weights reorder is skipped. pw nil, or of
// another layout than the primitive now wants (ConvOneDNNWeightsKind),
// reorders w as ConvOneDNN does.
func ConvOneDNNPrepared(s ConvShape, x, w []float32, pw *OneDNNWeights, ep Epilogue, y []float32) (bool, error) {
	eng, force := convEngineFor(s)
	if eng == nil {
		return false, nil
	}
	if err := s.check(x, w, ep, y); err != nil {
		return false, err
	}
	return eng.run(s, x, w, pw, ep, y, force)
}

// ConvOneDNNWeightsKind reports whether ConvOneDNN would run a convolution
// of shape s with ep's parts (nil slices absent; no lengths are checked),
// and if so the name of the weights layout its primitive wants, under
// which callers cache NewOneDNNWeights' result ("" when the primitive
// reads the plain weights and there is nothing to cache).
func ConvOneDNNWeightsKind(s ConvShape, ep Epilogue) (kind string, use bool) {
	eng, force := convEngineFor(s)
	if eng == nil {
		return "", false
	}
	if s.checkDims() != nil {
		return "", false
	}
	return eng.weightsKind(s, ep, force)
}

// NewOneDNNWeights reorders w (K,C,KH,KW) into the layout oneDNN's
// convolution primitive for s and ep's parts wants, for
// ConvOneDNNPrepared. It fails when oneDNN's convolution API is not
// loaded, refuses the shape, or reads plain weights (kind "").
func NewOneDNNWeights(s ConvShape, ep Epilogue, w []float32) (*OneDNNWeights, error) {
	eng := convChosen().eng
	if eng == nil {
		var err error
		if eng, err = loadConvEngine(); err != nil {
			return nil, err
		}
	}
	if err := s.checkDims(); err != nil {
		return nil, err
	}
	if len(w) < s.K*s.C*s.KH*s.KW {
		return nil, fmt.Errorf("%w: len(w) = %d, want %d for %+v", ErrConvShape, len(w), s.K*s.C*s.KH*s.KW, s)
	}
	return eng.newWeights(s, ep, w)
}

// ConvOneDNNImpl names the implementation oneDNN picks for a convolution
// of shape s with the epilogue's parts ep has (nil slices mean absent),
// e.g. "brgconv:avx512_core", or returns an error when oneDNN's
// convolution API is not loaded (whatever EnvConv says) or refuses the
// shape.
func ConvOneDNNImpl(s ConvShape, ep Epilogue) (string, error) {
	c := convChosen()
	eng := c.eng
	if eng == nil {
		var err error
		if eng, err = loadConvEngine(); err != nil {
			return "", err
		}
	}
	if err := s.checkDims(); err != nil {
		return "", err
	}
	p, err := eng.prim(convKeyOf(s, ep))
	if err != nil {
		return "", err
	}
	return p.impl, nil
}

// convKey identifies one cached primitive; s.BF16 is its data type.
type convKey struct {
	s                       ConvShape
	scale, shift, res, relu bool
}

func convKeyOf(s ConvShape, ep Epilogue) convKey {
	s.Inference = false // who runs it, not what: one primitive for both
	return convKey{s: s, scale: ep.Scale != nil, shift: ep.Shift != nil, res: ep.Residual != nil, relu: ep.ReLU}
}

// autoUses reports whether DETLAB_CONV=auto runs a convolution of shape s
// with epilogue ep on oneDNN's implementation impl (see EnvConv; bfloat16
// ones: autoUsesBF16).
func autoUses(s ConvShape, impl string, ep Epilogue) bool {
	if s.BF16 {
		return autoUsesBF16(impl)
	}
	return ep.Scale != nil && jitDirect(impl) && strings.Contains(impl, "avx512")
}

// jitDirect reports whether a oneDNN implementation name is one of its JIT
// direct convolutions, not its reference or GEMM-based (im2col) ones.
func jitDirect(impl string) bool {
	return !strings.HasPrefix(impl, "ref") && !strings.Contains(impl, "gemm")
}

// reluGo is reluInPlace's portable loop.
func reluGo(y []float32) {
	for i, v := range y {
		if v <= 0 {
			y[i] = 0
		}
	}
}
