package nn

import "github.com/detlab/detlab/lib/internal/freelist"

// padPanels is one image's patch matrix (C*KH*KW rows, OH*OW columns) as a
// compute.PanelSource, read from a zero-padded copy of the image: every
// window then lies inside the copy, so row p = (c, kh, kw) of a strip is,
// for each run of columns within one output row, a plain copy at a fixed
// offset from the run's start, with no bounds tests and no padding cases.
// With a column stride sw > 1 (and KW > 1) the copy is also split into sw
// column phases (phase r holds padded columns r, r+sw, ...), so strided
// windows are contiguous too; otherwise a stride reads every sw-th value.
// It writes exactly what im2colPanels writes (padding zeros are +0).
type padPanels struct {
	geo ConvGeom
	// xp is the image with geo.PH/geo.PW zeros around it, c planes of
	// hp rows pitch values apart. A padded row holds sw phases of wq values
	// when split, else wp values.
	xp           []float32
	hp, wp       int
	pitch, plane int // values between padded rows and between channels
	split        bool
	wq           int // values per phase when split
	// scratch, when non-nil, is where xp (a padded copy) came from and
	// goes back to on release.
	scratch Scratch
}

// padPanelMax is the largest kb whose row offsets PackPanel keeps on the
// stack (the GEMM's kc); larger calls allocate them.
const padPanelMax = 256

// newPadPanels returns the panel source of image x (C,H,W). With padding
// or phase splitting it copies x into a buffer from s (nil: the heap);
// p.release returns that buffer and must be called once the GEMM is done.
func newPadPanels(geo ConvGeom, x []float32, s Scratch) (p padPanels) {
	hp, wp := geo.H+2*geo.PH, geo.W+2*geo.PW
	p = padPanels{geo: geo, xp: x[:geo.C*geo.H*geo.W], hp: hp, wp: wp, pitch: wp, plane: hp * wp}
	p.split = geo.SW > 1 && geo.KW > 1
	if p.split {
		p.wq = (wp + geo.SW - 1) / geo.SW
		p.pitch = geo.SW * p.wq
		p.plane = hp * p.pitch
	}
	if geo.PH == 0 && geo.PW == 0 && !p.split {
		return p
	}
	n := geo.C * p.plane
	var buf []float32
	if s != nil {
		buf = s.Get(n)[:n]
		p.scratch = s
	} else {
		buf = make([]float32, n)
	}
	if p.split {
		padSplitImage(buf, x, geo.C, geo.H, geo.W, geo.PH, geo.PW, geo.SW)
	} else {
		padImage(buf, x, geo.C, geo.H, geo.W, geo.PH, geo.PW)
	}
	p.xp = buf
	return p
}

// release gives the padded copy back to the Scratch it came from (if
// any); p must not be used afterwards.
func (p *padPanels) release() {
	if p.scratch != nil {
		p.scratch.Put(p.xp)
		p.scratch = nil
	}
}

// padPanelSources recycles the *padPanels Conv2dFused hands to the GEMM
// as a compute.PanelSource (a padPanels value in an interface is an
// allocation per image).
var padPanelSources freelist.List[padPanels]

// padSplitImage writes x (c planes of h x w), padded as padImage does, into
// dst with each padded row split into sw phases of wq = ceil(wp/sw)
// values: padded column j goes to (j%sw)*wq + j/sw. Phase slots past the
// padded row (when sw does not divide wp) are zero. It overwrites all of
// dst (c*(h+2ph)*sw*wq values).
func padSplitImage(dst, x []float32, c, h, w, ph, pw, sw int) {
	hp, wp := h+2*ph, w+2*pw
	wq := (wp + sw - 1) / sw
	pitch := sw * wq
	clear(dst[:c*hp*pitch])
	for ci := 0; ci < c; ci++ {
		for i := 0; i < h; i++ {
			src := x[(ci*h+i)*w : (ci*h+i+1)*w]
			row := dst[(ci*hp+ph+i)*pitch : (ci*hp+ph+i+1)*pitch]
			for r := 0; r < sw; r++ {
				// Padded columns j = r + sw*t with pw <= j < pw+w.
				t0 := 0
				if r < pw {
					t0 = (pw - r + sw - 1) / sw
				}
				phase := row[r*wq : (r+1)*wq]
				for t, j := t0, r+sw*t0-pw; j < w; t, j = t+1, j+sw {
					phase[t] = src[j]
				}
			}
		}
	}
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
// once per call, so writing a run is one copy per row: copyRuns, masked
// AVX-512 loads and stores where the CPU has them.
func (s padPanels) PackPanel(dst []float32, nr, p0, kb, j0, nb int) {
	geo := s.geo
	var offBuf [padPanelMax]int
	offs := offBuf[:0]
	if kb > padPanelMax {
		offs = make([]int, 0, kb)
	}
	sw := geo.SW
	maxOff := 0
	c, rem := p0/(geo.KH*geo.KW), p0%(geo.KH*geo.KW)
	kh, kw := rem/geo.KW, rem%geo.KW
	for p := 0; p < kb; p++ {
		off := c*s.plane + kh*s.pitch + kw
		if s.split {
			off = c*s.plane + kh*s.pitch + kw%sw*s.wq + kw/sw
		}
		offs = append(offs, off)
		maxOff = max(maxOff, off)
		if kw++; kw == geo.KW {
			kw = 0
			if kh++; kh == geo.KH {
				kh = 0
				c++
			}
		}
	}
	xp := s.xp
	step := sw // distance between consecutive columns of a run
	if s.split {
		step = 1
	}
	for st := 0; st*nr < nb; st++ {
		strip := dst[st*nr*kb : (st+1)*nr*kb]
		q0 := j0 + st*nr
		w := min(nr, nb-st*nr)
		oh, ow := q0/geo.OW, q0%geo.OW
		for j := 0; j < w; {
			n := min(w-j, geo.OW-ow)
			base := oh*geo.SH*s.pitch + ow*step
			if step == 1 {
				copyRuns(strip[j:], xp[base:], offs, maxOff, n, nr)
			} else {
				for p, off := range offs {
					out := strip[p*nr+j : p*nr+j+n]
					src := xp[off+base : off+base+(n-1)*step+1]
					for t := range out {
						out[t] = src[t*step]
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

// copyRunsGo is copyRuns in Go (other CPUs, runs wider than 32, tests).
func copyRunsGo(dst, src []float32, offs []int, n, ldd int) {
	for p, off := range offs {
		copy(dst[p*ldd:p*ldd+n], src[off:off+n])
	}
}
