package nn

import (
	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/internal/freelist"
)

// Conv2d implements Backend with one GEMM per image, writing NCHW output
// directly. In float32, and in bfloat16 where the CPU multiplies it
// natively (compute.HasBF16), the patch matrix (im2col) is generated
// straight into the GEMM's packed panels and the bias is added by its
// store; other precisions build the patch matrix in a scratch buffer for
// cpuGemm.
func (b CPU) Conv2d(geo ConvGeom, x, w, bias, y []float32, s Scratch) {
	if geo.Precision == Float32 || (geo.Precision == BFloat16 && compute.HasBF16()) {
		b.Conv2dFused(geo, x, w, ConvEpilogue{Shift: bias}, y, s)
		return
	}
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
	runPooled(geo.C, &im2colJobs, im2colJob{geo: geo, x: x, col: col})
}

// im2colJob is im2col over channels [c0, c1).
type im2colJob struct {
	geo    ConvGeom
	x, col []float32
}

var im2colJobs freelist.List[im2colJob]

func (j *im2colJob) run(c0, c1 int) {
	geo, x, col := j.geo, j.x, j.col
	ohw := geo.OH * geo.OW
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
}

// col2im adds a (C*KH*KW, OH*OW) patch-gradient matrix into one image's
// gradient.
func col2im(geo ConvGeom, col, dx []float32) {
	runPooled(geo.C, &col2imJobs, col2imJob{geo: geo, col: col, dx: dx})
}

// col2imJob is col2im over channels [c0, c1).
type col2imJob struct {
	geo     ConvGeom
	col, dx []float32
}

var col2imJobs freelist.List[col2imJob]

func (j *col2imJob) run(c0, c1 int) {
	geo, col, dx := j.geo, j.col, j.dx
	ohw := geo.OH * geo.OW
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
}

// Conv2dFused implements FusedConvBackend. On inference graphs, float32
// 3x3 stride-1 convolutions run as Winograd products (winogradFor) and
// those with at most 256 output pixels as patch-row products
// (usePatchRows). Otherwise, in float32 the epilogue runs in
// the GEMM's store (compute.SgemmPanels, the scale folded into the packed
// weights) and the patch matrix is generated straight into the packed
// panels. In bfloat16 on a CPU that multiplies it natively the same holds
// with compute.BF16Matrix (the weights converted once per call) and its
// Panels, except that the epilogue (scale included)
// is float32 arithmetic on the float32 accumulated product, as torch's
// autocast runs batch norm in float32 after a bfloat16 convolution. Other
// precisions run Conv2d and then the epilogue.
func (b CPU) Conv2dFused(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32, s Scratch) {
	// Winograd first: on the shapes it takes (forward-only float32 3x3
	// stride 1) it measured 1.9-2.3x less CPU than oneDNN 2.6's brgconv
	// (BenchmarkWinogradLayers, ResNet18's layers at 224).
	if pl := winogradFor(geo); pl != nil {
		conv2dWinograd(pl, geo, x, w, ep, y, s)
		return
	}
	if usePatchRows(geo) {
		conv2dPatchRows(geo, x, w, ep, y, s)
		return
	}
	if convOneDNN(geo, x, w, ep, y) { // oneDNN's convolutions when compute.EnvConv selects them
		return
	}
	bf16 := geo.Precision == BFloat16 && compute.HasBF16()
	if geo.Precision != Float32 && !bf16 {
		b.Conv2d(geo, x, w, nil, y, s)
		applyConvEpilogue(b, geo, y, ep)
		return
	}
	ckk := geo.C * geo.KH * geo.KW
	ohw := geo.OH * geo.OW
	chw := geo.C * geo.H * geo.W
	cep := compute.Epilogue{Scale: ep.Scale, Shift: ep.Shift, ReLU: ep.ReLU, LdResidual: ohw}
	var wb *compute.BF16Matrix
	if bf16 {
		// The weights are converted once for all the images (and, with
		// the columns split between cores, once for all the workers),
		// and kept in the parameter's cache while it is unchanged.
		wb = cachedBF16(geo, w)
		if geo.Weights == nil {
			defer wb.Release()
		}
	}
	for n := 0; n < geo.N; n++ {
		xn := x[n*chw : (n+1)*chw]
		yn := y[n*geo.K*ohw : (n+1)*geo.K*ohw]
		if ep.Residual != nil {
			cep.Residual = ep.Residual[n*geo.K*ohw : (n+1)*geo.K*ohw]
		}
		if geo.pointwise() {
			if bf16 {
				wb.Gemm(ohw, xn, ohw, yn, ohw, cep)
			} else {
				compute.SgemmEpilogue(false, false, geo.K, ohw, ckk, w, ckk, xn, ohw, yn, ohw, cep)
			}
			continue
		}
		// The patches are read from a zero-padded copy of the image
		// (padPanels: no bounds tests per row of a panel).
		src := padPanelSources.Get()
		*src = newPadPanels(geo, xn, s)
		if bf16 {
			wb.Panels(ohw, src, yn, ohw, cep)
		} else {
			compute.SgemmPanels(geo.K, ohw, ckk, w, ckk, src, yn, ohw, cep)
		}
		src.release()
		*src = padPanels{}
		padPanelSources.Put(src)
	}
}

// im2colPanels is one image's patch matrix (C*KH*KW rows, OH*OW columns)
// as a compute.PanelSource: im2col written straight into the GEMM's
// packed panels, reading the unpadded image with a bounds test per run.
// Conv2dFused uses padPanels (a zero-padded copy, no tests); this is the
// reference it is tested against.
type im2colPanels struct {
	geo ConvGeom
	x   []float32 // (C,H,W)
}

// PackPanel implements compute.PanelSource. Row p of the patch matrix is
// (channel, kh, kw); column q is the output position (q/OW, q%OW). Each
// strip's nr columns are split once into runs within one output row; for
// every row p each run then reads one input row: a copy at stride 1, a
// strided gather otherwise, zeros where the window lies in the padding.
func (s im2colPanels) PackPanel(dst []float32, nr, p0, kb, j0, nb int) {
	geo := s.geo
	hw := geo.H * geo.W
	type run struct{ j, n, ih0, iw0 int } // columns [j, j+n); input row and column at kh = kw = 0
	var runsBuf [64]run
	for st := 0; st*nr < nb; st++ {
		strip := dst[st*nr*kb : (st+1)*nr*kb]
		q0 := j0 + st*nr
		w := min(nr, nb-st*nr)
		runs := runsBuf[:0]
		oh, ow := q0/geo.OW, q0%geo.OW
		for j := 0; j < w; {
			n := min(w-j, geo.OW-ow)
			runs = append(runs, run{j, n, oh*geo.SH - geo.PH, ow*geo.SW - geo.PW})
			j += n
			ow = 0
			oh++
		}
		c, rem := p0/(geo.KH*geo.KW), p0%(geo.KH*geo.KW)
		kh, kw := rem/geo.KW, rem%geo.KW
		for p := 0; p < kb; p++ {
			plane := s.x[c*hw : (c+1)*hw]
			d := strip[p*nr : p*nr+nr]
			for _, r := range runs {
				out := d[r.j : r.j+r.n]
				ih := r.ih0 + kh
				if ih < 0 || ih >= geo.H {
					clear(out)
					continue
				}
				row := plane[ih*geo.W : (ih+1)*geo.W]
				iw := r.iw0 + kw
				if iw >= 0 && iw+(r.n-1)*geo.SW < geo.W {
					// The whole run lies inside the row.
					if geo.SW == 1 {
						copy(out, row[iw:iw+r.n])
						continue
					}
					i := iw
					for t := range out {
						out[t] = row[i]
						i += geo.SW
					}
					continue
				}
				gatherRow(out, row, iw, geo.SW)
			}
			clear(d[w:])
			if kw++; kw == geo.KW {
				kw = 0
				if kh++; kh == geo.KH {
					kh = 0
					c++
				}
			}
		}
	}
}

// gatherRow writes out[t] = src[iw+t*stride], zero where that index falls
// outside src (the padding).
func gatherRow(out, src []float32, iw, stride int) {
	if stride == 1 {
		// Valid t: -iw <= t < len(src)-iw.
		lo, hi := max(0, -iw), min(len(out), len(src)-iw)
		if lo >= hi {
			clear(out)
			return
		}
		clear(out[:lo])
		copy(out[lo:hi], src[iw+lo:iw+hi])
		clear(out[hi:])
		return
	}
	// Valid t: 0 <= iw+t*stride < len(src); the divisions only run at
	// the edges.
	lo, hi := 0, len(out)
	if iw < 0 {
		lo = (-iw + stride - 1) / stride
	}
	if iw+(hi-1)*stride >= len(src) {
		if last := len(src) - 1 - iw; last < 0 {
			hi = 0
		} else {
			hi = last/stride + 1
		}
	}
	if lo >= hi {
		clear(out)
		return
	}
	clear(out[:lo])
	clear(out[hi:])
	i := iw + lo*stride
	seg := out[lo:hi]
	_ = src[i+(len(seg)-1)*stride]
	for t := range seg {
		seg[t] = src[i]
		i += stride
	}
}
