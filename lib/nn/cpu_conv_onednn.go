package nn

import "github.com/detlab/detlab/lib/compute"

// convOneDNN runs a Float32 or BFloat16 Conv2dFused through oneDNN's
// convolution primitives (compute.ConvOneDNNPrepared) when compute.EnvConv
// selects them for the shape and precision, and reports whether it did;
// otherwise, and on any error from it (the Go path then runs and reports
// bad shapes as before), y is untouched and the caller runs its own
// im2col + GEMM.
//
// BFloat16 (autocast) sets compute.ConvShape.BF16: oneDNN rounds x and w
// to bfloat16, multiplies them in bfloat16 with float32 accumulation
// (avx512_core_bf16, or AMX where the CPU has it) and applies the epilogue
// in float32, as the Go bfloat16 path does; under DETLAB_CONV=auto it
// takes every bfloat16 convolution for which oneDNN picks such a kernel,
// and with DETLAB_CONV unset those of inference graphs (forwardOnly) with
// an even channel count (compute.ConvShape.Inference; measured faster
// there, not in training).
// Float16 never goes to oneDNN.
//
// The weights, reordered into oneDNN's blocked layout (and rounded, in
// bfloat16), are kept in geo.Weights (under the layout's name, which
// differs between the precisions) for convolutions with a BatchNorm folded
// in (ep.Scale set: eval or frozen BN, as in inference), whose weights
// rarely change between calls, and in bfloat16 for every convolution of an
// inference graph. Other convolutions (training's Conv2d, whose weights
// change every step) reorder into a buffer of the primitive on every call:
// caching them would allocate a new copy per step and would hide in-place
// writes that skip Param.MarkChanged (the finite-difference gradient tests
// make such writes).
func convOneDNN(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32) bool {
	if geo.Precision != Float32 && geo.Precision != BFloat16 {
		return false
	}
	s := compute.ConvShape{N: geo.N, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: geo.KH, KW: geo.KW,
		SH: geo.SH, SW: geo.SW, PH: geo.PH, PW: geo.PW, OH: geo.OH, OW: geo.OW, BF16: geo.Precision == BFloat16,
		Inference: geo.forwardOnly}
	cep := compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU}
	kind, use := compute.ConvOneDNNWeightsKind(s, cep)
	if !use {
		return false
	}
	var pw *compute.OneDNNWeights
	if kind != "" && geo.Weights != nil && (ep.Scale != nil || s.BF16 && geo.forwardOnly) {
		v, err := geo.Weights.Get(kind, nil, func() (Derived, error) {
			return compute.NewOneDNNWeights(s, cep, w)
		})
		if err == nil {
			pw, _ = v.(*compute.OneDNNWeights)
		}
	}
	ran, err := compute.ConvOneDNNPrepared(s, x, w, pw, cep, y)
	return ran && err == nil
}
