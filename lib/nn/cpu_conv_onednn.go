package nn

import "github.com/detlab/detlab/lib/compute"

// convOneDNN runs a float32 Conv2dFused through oneDNN's convolution
// primitives (compute.ConvOneDNNPrepared) when compute.EnvConv selects
// them for the shape, and reports whether it did; otherwise, and on any
// error from it (the Go path then runs and reports bad shapes as before),
// y is untouched and the caller runs its own im2col + GEMM.
//
// The weights, reordered into oneDNN's blocked layout, are kept in
// geo.Weights (under the layout's name) for convolutions with a BatchNorm
// folded in (ep.Scale set: eval or frozen BN, as in inference), whose
// weights rarely change between calls. Other convolutions (training's
// Conv2d, whose weights change every step) reorder into a buffer of the
// primitive on every call: caching them would allocate a new copy per step
// and would hide in-place writes that skip Param.MarkChanged (the
// finite-difference gradient tests make such writes).
func convOneDNN(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32) bool {
	if geo.Precision != Float32 {
		return false
	}
	s := compute.ConvShape{N: geo.N, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: geo.KH, KW: geo.KW,
		SH: geo.SH, SW: geo.SW, PH: geo.PH, PW: geo.PW, OH: geo.OH, OW: geo.OW}
	cep := compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU}
	kind, use := compute.ConvOneDNNWeightsKind(s, cep)
	if !use {
		return false
	}
	var pw *compute.OneDNNWeights
	if kind != "" && geo.Weights != nil && ep.Scale != nil {
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
