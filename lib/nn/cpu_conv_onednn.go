package nn

import "github.com/detlab/detlab/lib/compute"

// convOneDNN runs a float32 Conv2dFused through compute.ConvOneDNN
// (oneDNN's convolution primitives) when compute.EnvConv selects it for
// the shape, and reports whether it did; otherwise, and on any error from
// it (the Go path then runs and reports bad shapes as before), y is
// untouched and the caller runs its own im2col + GEMM.
func convOneDNN(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32) bool {
	if geo.Precision != Float32 {
		return false
	}
	s := compute.ConvShape{N: geo.N, C: geo.C, H: geo.H, W: geo.W, K: geo.K, KH: geo.KH, KW: geo.KW,
		SH: geo.SH, SW: geo.SW, PH: geo.PH, PW: geo.PW, OH: geo.OH, OW: geo.OW}
	ran, err := compute.ConvOneDNN(s, x, w, compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, Residual: ep.Residual, ReLU: ep.ReLU}, y)
	return ran && err == nil
}
