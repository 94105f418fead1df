package nn

// padPanels is one image's patch matrix (C*KH*KW rows, OH*OW columns) as a
// compute.PanelSource, read from a zero-padded copy of the image: every
// window then lies inside the copy, so row p = (c, kh, kw) of a strip is,
// for each run of columns within one output row, a plain copy (stride 1)
// or strided read (stride > 1) at a fixed offset from the run's start,
// with no bounds tests and no padding cases. It writes exactly what
// im2colPanels writes (the same values; padding zeros are +0).
type padPanels struct {
	geo    ConvGeom
	xp     []float32 // (C, hp, wp): the image with geo.PH/geo.PW zeros around it
	hp, wp int
}

// padPanelMax is the largest kb whose row offsets PackPanel keeps on the
// stack (the GEMM's kc); larger calls allocate them.
const padPanelMax = 256

// newPadPanels returns the panel source of image x (C,H,W). With padding
// it copies x into a buffer from s (nil: the heap); release returns that
// buffer and must be called once the GEMM is done.
func newPadPanels(geo ConvGeom, x []float32, s Scratch) (p padPanels, release func()) {
	hp, wp := geo.H+2*geo.PH, geo.W+2*geo.PW
	p = padPanels{geo: geo, xp: x[:geo.C*geo.H*geo.W], hp: hp, wp: wp}
	if geo.PH == 0 && geo.PW == 0 {
		return p, func() {}
	}
	n := geo.C * hp * wp
	var buf []float32
	if s != nil {
		buf = s.Get(n)[:n]
		release = func() { s.Put(buf) }
	} else {
		buf = make([]float32, n)
		release = func() {}
	}
	padImage(buf, x, geo.C, geo.H, geo.W, geo.PH, geo.PW)
	p.xp = buf
	return p, release
}

// padImage writes x (c planes of h x w) into dst (c planes of
// (h+2ph) x (w+2pw)) with zeros around each plane, overwriting all of dst.
func padImage(dst, x []float32, c, h, w, ph, pw int) {
	hp, wp := h+2*ph, w+2*pw
	for ci := 0; ci < c; ci++ {
		plane := dst[ci*hp*wp : (ci+1)*hp*wp]
		src := x[ci*h*w : (ci+1)*h*w]
		clear(plane[:ph*wp+pw])
		for i := 0; i < h; i++ {
			row := plane[(ph+i)*wp+pw : (ph+i)*wp+pw+w]
			copy(row, src[i*w:(i+1)*w])
			// The right padding of this row and the left of the next.
			end := (ph+i+1)*wp + pw
			if i == h-1 {
				end = hp * wp
			}
			clear(plane[(ph+i)*wp+pw+w : end])
		}
		if h == 0 {
			clear(plane)
		}
	}
}

// PackPanel implements compute.PanelSource (see im2colPanels.PackPanel for
// the layout). Each strip's columns are split once into runs within one
// output row; the offset of each row p in the padded image is computed
// once per call, so writing a run is one copy per row.
func (s padPanels) PackPanel(dst []float32, nr, p0, kb, j0, nb int) {
	geo := s.geo
	var offBuf [padPanelMax]int
	offs := offBuf[:0]
	if kb > padPanelMax {
		offs = make([]int, 0, kb)
	}
	plane := s.hp * s.wp
	c, rem := p0/(geo.KH*geo.KW), p0%(geo.KH*geo.KW)
	kh, kw := rem/geo.KW, rem%geo.KW
	for p := 0; p < kb; p++ {
		offs = append(offs, c*plane+kh*s.wp+kw)
		if kw++; kw == geo.KW {
			kw = 0
			if kh++; kh == geo.KH {
				kh = 0
				c++
			}
		}
	}
	xp := s.xp
	sw := geo.SW
	for st := 0; st*nr < nb; st++ {
		strip := dst[st*nr*kb : (st+1)*nr*kb]
		q0 := j0 + st*nr
		w := min(nr, nb-st*nr)
		oh, ow := q0/geo.OW, q0%geo.OW
		for j := 0; j < w; {
			n := min(w-j, geo.OW-ow)
			base := oh*geo.SH*s.wp + ow*sw
			switch {
			case sw == 1 && n == nr:
				for p, off := range offs {
					copy(strip[p*nr:p*nr+nr], xp[off+base:off+base+nr])
				}
			case sw == 1:
				for p, off := range offs {
					o := p*nr + j
					copy(strip[o:o+n], xp[off+base:off+base+n])
				}
			default:
				for p, off := range offs {
					out := strip[p*nr+j : p*nr+j+n]
					src := xp[off+base : off+base+(n-1)*sw+1]
					for t := range out {
						out[t] = src[t*sw]
					}
				}
			}
			j += n
			ow = 0
			oh++
		}
		if w < nr {
			for p := range offs {
				clear(strip[p*nr+w : p*nr+nr])
			}
		}
	}
}
