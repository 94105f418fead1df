package nn

import "github.com/detlab/detlab/lib/compute"

// Conv2d implements Backend with im2col into a scratch buffer and one GEMM
// per image, writing NCHW output directly.
func (b CPU) Conv2d(geo ConvGeom, x, w, bias, y []float32, s Scratch) {
	ckk := geo.C * geo.KH * geo.KW
	ohw := geo.OH * geo.OW
	var col []float32
	if !geo.pointwise() {
		col = s.Get(ckk * ohw)
		defer s.Put(col)
	}
	for n := 0; n < geo.N; n++ {
		xn := x[n*geo.C*geo.H*geo.W : (n+1)*geo.C*geo.H*geo.W]
		yn := y[n*geo.K*ohw : (n+1)*geo.K*ohw]
		src := xn
		if col != nil {
			im2col(geo, xn, col)
			src = col
		}
		if bias != nil && geo.Precision == Float32 {
			// The bias is added by the GEMM's store, not a second pass.
			compute.SgemmEpilogue(false, false, geo.K, ohw, ckk, w, ckk, src, ohw, yn, ohw, compute.Epilogue{Shift: bias})
			continue
		}
		cpuGemm(geo.Precision, false, false, geo.K, ohw, ckk, 1, w, ckk, src, ohw, 0, yn, ohw)
		if bias != nil {
			for k := 0; k < geo.K; k++ {
				bk := bias[k]
				row := yn[k*ohw : (k+1)*ohw]
				for i := range row {
					row[i] += bk
				}
			}
		}
	}
}

// Conv2dBackward implements Backend: dw += dy * col^T, dcol = w^T * dy
// then col2im into dx, db += sum(dy).
func (b CPU) Conv2dBackward(geo ConvGeom, x, w, dy, dx, dw, db []float32, s Scratch) {
	ckk := geo.C * geo.KH * geo.KW
	ohw := geo.OH * geo.OW
	chw := geo.C * geo.H * geo.W
	var col []float32
	if !geo.pointwise() && (dw != nil || dx != nil) {
		col = s.Get(ckk * ohw)
		defer s.Put(col)
	}
	for n := 0; n < geo.N; n++ {
		xn := x[n*chw : (n+1)*chw]
		dyn := dy[n*geo.K*ohw : (n+1)*geo.K*ohw]
		if db != nil {
			for k := 0; k < geo.K; k++ {
				var sum float64
				for _, v := range dyn[k*ohw : (k+1)*ohw] {
					sum += float64(v)
				}
				db[k] += float32(sum)
			}
		}
		if dw != nil {
			src := xn
			if col != nil {
				im2col(geo, xn, col)
				src = col
			}
			cpuGemm(geo.Precision, false, true, geo.K, ckk, ohw, 1, dyn, ohw, src, ohw, 1, dw, ckk)
		}
		if dx != nil {
			dxn := dx[n*chw : (n+1)*chw]
			if col == nil {
				cpuGemm(geo.Precision, true, false, ckk, ohw, geo.K, 1, w, ckk, dyn, ohw, 1, dxn, ohw)
				continue
			}
			cpuGemm(geo.Precision, true, false, ckk, ohw, geo.K, 1, w, ckk, dyn, ohw, 0, col, ohw)
			col2im(geo, col, dxn)
		}
	}
}

// im2col writes the (C*KH*KW, OH*OW) patch matrix of one image.
func im2col(geo ConvGeom, x, col []float32) {
	ohw := geo.OH * geo.OW
	parallelFor(geo.C, func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			plane := x[c*geo.H*geo.W : (c+1)*geo.H*geo.W]
			for kh := 0; kh < geo.KH; kh++ {
				for kw := 0; kw < geo.KW; kw++ {
					row := col[((c*geo.KH+kh)*geo.KW+kw)*ohw:][:ohw]
					for oh := 0; oh < geo.OH; oh++ {
						ih := oh*geo.SH - geo.PH + kh
						dst := row[oh*geo.OW : (oh+1)*geo.OW]
						if ih < 0 || ih >= geo.H {
							clear(dst)
							continue
						}
						src := plane[ih*geo.W : (ih+1)*geo.W]
						iw := kw - geo.PW
						if geo.SW == 1 {
							// dst[ow] = src[ow+iw] where 0 <= ow+iw < W:
							// one copy, zeros at the padded ends.
							lo, hi := max(0, -iw), min(geo.OW, geo.W-iw)
							if lo >= hi {
								clear(dst)
								continue
							}
							clear(dst[:lo])
							copy(dst[lo:hi], src[lo+iw:hi+iw])
							clear(dst[hi:])
							continue
						}
						for ow := range dst {
							if iw >= 0 && iw < geo.W {
								dst[ow] = src[iw]
							} else {
								dst[ow] = 0
							}
							iw += geo.SW
						}
					}
				}
			}
		}
	})
}

// col2im adds a (C*KH*KW, OH*OW) patch-gradient matrix into one image's
// gradient.
func col2im(geo ConvGeom, col, dx []float32) {
	ohw := geo.OH * geo.OW
	parallelFor(geo.C, func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			plane := dx[c*geo.H*geo.W : (c+1)*geo.H*geo.W]
			for kh := 0; kh < geo.KH; kh++ {
				for kw := 0; kw < geo.KW; kw++ {
					row := col[((c*geo.KH+kh)*geo.KW+kw)*ohw:][:ohw]
					for oh := 0; oh < geo.OH; oh++ {
						ih := oh*geo.SH - geo.PH + kh
						if ih < 0 || ih >= geo.H {
							continue
						}
						dst := plane[ih*geo.W : (ih+1)*geo.W]
						src := row[oh*geo.OW : (oh+1)*geo.OW]
						iw := kw - geo.PW
						if geo.SW == 1 {
							lo, hi := max(0, -iw), min(geo.OW, geo.W-iw)
							if lo < hi {
								d := dst[lo+iw : hi+iw]
								for i, v := range src[lo:hi] {
									d[i] += v
								}
							}
							continue
						}
						for _, v := range src {
							if iw >= 0 && iw < geo.W {
								dst[iw] += v
							}
							iw += geo.SW
						}
					}
				}
			}
		}
	})
}

// Conv2dFused implements FusedConvBackend: in float32 the epilogue runs in
// the GEMM's store (compute.SgemmEpilogue, the scale folded into the packed
// weights); other precisions run Conv2d and then the epilogue.
func (b CPU) Conv2dFused(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32, s Scratch) {
	if geo.Precision != Float32 {
		b.Conv2d(geo, x, w, nil, y, s)
		applyConvEpilogue(b, geo, y, ep)
		return
	}
	ckk := geo.C * geo.KH * geo.KW
	ohw := geo.OH * geo.OW
	var col []float32
	if !geo.pointwise() {
		col = s.Get(ckk * ohw)
		defer s.Put(col)
	}
	cep := compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, ReLU: ep.ReLU, LdResidual: ohw}
	for n := 0; n < geo.N; n++ {
		xn := x[n*geo.C*geo.H*geo.W : (n+1)*geo.C*geo.H*geo.W]
		yn := y[n*geo.K*ohw : (n+1)*geo.K*ohw]
		src := xn
		if col != nil {
			im2col(geo, xn, col)
			src = col
		}
		if ep.Residual != nil {
			cep.Residual = ep.Residual[n*geo.K*ohw : (n+1)*geo.K*ohw]
		}
		compute.SgemmEpilogue(false, false, geo.K, ohw, ckk, w, ckk, src, ohw, yn, ohw, cep)
	}
}
