// Package convref is the float64 direct convolution that the convolution
// tests of lib/nn and lib/compute measure their float32 and bfloat16 paths
// against (Winograd, patch rows, im2col, oneDNN), with the epilogue the
// fused paths apply.
package convref

import "math"

// Shape is a 2-D convolution's geometry in NCHW, groups 1, dilation 1:
// input (N, C, H, W), weights (K, C, KH, KW), output (N, K, OH, OW).
type Shape struct {
	N, C, H, W     int
	K, KH, KW      int
	SH, SW, PH, PW int
	OH, OW         int
}

// Epilogue is applied to each output in this order, each part as present:
// times Scale[k], plus Shift[k], plus Residual (shaped like the output),
// then ReLU (a NaN stays NaN).
type Epilogue struct {
	Scale, Shift, Residual []float32
	ReLU                   bool
}

// Direct returns y, the convolution of x and w with ep applied, in
// float64, and for each output the magnitude
// mag = |Scale|*sum|x*w| + |Shift| + |Residual| (before ReLU), which
// bounds the rounding error of a float32 evaluation: a test's tolerance
// in units of 2^-24*mag does not depend on the data's scale.
func Direct(s Shape, x, w []float32, ep Epilogue) (y, mag []float64) {
	y = make([]float64, s.N*s.K*s.OH*s.OW)
	mag = make([]float64, len(y))
	for n := 0; n < s.N; n++ {
		for k := 0; k < s.K; k++ {
			for oh := 0; oh < s.OH; oh++ {
				for ow := 0; ow < s.OW; ow++ {
					var acc, abs float64
					for c := 0; c < s.C; c++ {
						for i := 0; i < s.KH; i++ {
							ih := oh*s.SH - s.PH + i
							if ih < 0 || ih >= s.H {
								continue
							}
							for j := 0; j < s.KW; j++ {
								iw := ow*s.SW - s.PW + j
								if iw < 0 || iw >= s.W {
									continue
								}
								p := float64(x[((n*s.C+c)*s.H+ih)*s.W+iw]) * float64(w[((k*s.C+c)*s.KH+i)*s.KW+j])
								acc += p
								abs += math.Abs(p)
							}
						}
					}
					o := ((n*s.K+k)*s.OH+oh)*s.OW + ow
					if ep.Scale != nil {
						acc *= float64(ep.Scale[k])
						abs *= math.Abs(float64(ep.Scale[k]))
					}
					if ep.Shift != nil {
						acc += float64(ep.Shift[k])
						abs += math.Abs(float64(ep.Shift[k]))
					}
					if ep.Residual != nil {
						acc += float64(ep.Residual[o])
						abs += math.Abs(float64(ep.Residual[o]))
					}
					if ep.ReLU && acc < 0 {
						acc = 0
					}
					y[o], mag[o] = acc, abs
				}
			}
		}
	}
	return y, mag
}

// WorstUnits returns the largest |got - want| / (2^-24 * mag) over the
// outputs, and where: the distance from the reference in float32 rounding
// units of each output's magnitude (Direct's mag). A NaN in got counts as
// infinitely far.
func WorstUnits(got []float32, want, mag []float64) (worst float64, at int) {
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(d) {
			return math.Inf(1), i
		}
		if u := d / (max(mag[i], 1e-30) / (1 << 24)); u > worst {
			worst, at = u, i
		}
	}
	return worst, at
}
