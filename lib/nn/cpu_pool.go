package nn

import "math"

// MaxPool2d implements Backend.
func (CPU) MaxPool2d(geo PoolGeom, x, y []float32, arg []int32) {
	hw, ohw := geo.H*geo.W, geo.OH*geo.OW
	parallelFor(geo.Planes, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			plane := x[p*hw : (p+1)*hw]
			for oh := 0; oh < geo.OH; oh++ {
				h0 := oh*geo.SH - geo.PH
				hs, he := max(h0, 0), min(h0+geo.KH, geo.H)
				for ow := 0; ow < geo.OW; ow++ {
					w0 := ow*geo.SW - geo.PW
					ws, we := max(w0, 0), min(w0+geo.KW, geo.W)
					best := float32(math.Inf(-1))
					bi := hs*geo.W + ws
				window:
					for ih := hs; ih < he; ih++ {
						for iw := ws; iw < we; iw++ {
							v := plane[ih*geo.W+iw]
							if v > best || v != v {
								best, bi = v, ih*geo.W+iw
								if v != v {
									break window
								}
							}
						}
					}
					o := p*ohw + oh*geo.OW + ow
					y[o] = best
					if arg != nil {
						arg[o] = int32(bi)
					}
				}
			}
		}
	})
}

// MaxPool2dBackward implements Backend.
func (CPU) MaxPool2dBackward(geo PoolGeom, dy, dx []float32, arg []int32) {
	hw, ohw := geo.H*geo.W, geo.OH*geo.OW
	parallelFor(geo.Planes, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			d := dx[p*hw : (p+1)*hw]
			for i, g := range dy[p*ohw : (p+1)*ohw] {
				d[arg[p*ohw+i]] += g
			}
		}
	})
}

// AdaptiveAvgPool2d1 is torch.nn.AdaptiveAvgPool2d((1, 1)): the mean of
// each channel plane, shape (N,C,1,1).
type AdaptiveAvgPool2d1 struct{}
