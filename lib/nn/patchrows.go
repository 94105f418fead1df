package nn

import (
	"os"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/internal/freelist"
)

// The patch-row convolution computes an inference convolution as the
// transposed product Y^T (P x K) = X (P x C*KH*KW) W^T, one row of X per
// output pixel (P = N*OH*OW) read from an NHWC copy of the input, with the
// weights (scale folded in) packed once as the GEMM's right operand and
// kept in the parameter's cache. Where P is small (the deep layers of a
// network at batch 1: 49 or 196 pixels against 256-512 channels) this is
// the better way round for the micro-kernel: the weights, the large
// operand, are read once as vectors while the few patch rows are
// broadcast, and a strip of weights serves every row strip while it is
// in the L1 cache. The im2col product runs the other way (weights as the
// broadcast rows, packed again at every call, a patch matrix of 49
// columns filling 49 of the kernel's 64 lanes); Winograd reads 1.8x
// (F(2,3)) more weight bytes than there are weights, which on small maps
// is memory traffic rather than arithmetic.
//
// Each patch row is KH runs of KW*C contiguous values of the padded NHWC
// image (the copy wgPadNHWC writes), the product's rows come out NHWC,
// and wgStoreNCHW transposes them into y with the epilogue's shift,
// residual and ReLU on the way.

// patchRowsKind is the WeightCache kind of the packed weights.
const patchRowsKind = "cpu/patch-rows"

// patchRowsChunk is the width (output channels) of one column chunk of
// the packed weights: the workers split the chunks, so that each reads
// only its own weights.
const patchRowsChunk = 64

// patchRowsMaxPixels is the largest P (N*OH*OW) the patch-row product
// takes: beyond it the im2col product's weights are reused across enough
// columns that packing them per call costs little, and its panels are
// built in the cache.
const patchRowsMaxPixels = 256

// usePatchRows reports whether Conv2dFused runs geo as a patch-row
// product: a float32 convolution on a forward-only graph whose weights
// are a parameter's (their packing is cached), with channel counts that
// are multiples of 16 (wgPadNHWC's and wgStoreNCHW's vector blocks), on a
// CPU with those blocks, and at most patchRowsMaxPixels output pixels.
func usePatchRows(geo ConvGeom) bool {
	return hasWinograd && patchRowsMode != "off" && geo.forwardOnly && geo.Weights != nil &&
		geo.Precision == Float32 && geo.C%16 == 0 && geo.K%16 == 0 &&
		geo.N*geo.OH*geo.OW <= patchRowsMaxPixels
}

// patchRowsMode is DETLAB_PATCH_ROWS=off, read once (tests set it): off
// leaves every convolution to Winograd or im2col.
var patchRowsMode = os.Getenv("DETLAB_PATCH_ROWS")

// patchRowsDescription says whether inference graphs use the patch-row
// product, for CPU.Name.
func patchRowsDescription() string {
	switch {
	case !hasWinograd:
		return "patch rows off (needs AVX-512)"
	case patchRowsMode == "off":
		return "patch rows off (DETLAB_PATCH_ROWS=off)"
	}
	return "patch rows for inference at <= 256 pixels"
}

// prWeights is a convolution's weights for the patch-row product:
// B[(kh*KW+kw)*C+c][k] = scale[k]*w[k][c][kh][kw], packed in column
// chunks of patchRowsChunk output channels.
type prWeights struct{ chunks []*compute.PackedB }

// DerivedBytes implements Derived.
func (w *prWeights) DerivedBytes() int64 {
	var n int64
	for _, c := range w.chunks {
		n += c.Bytes()
	}
	return n
}

// newPRWeights transposes, scales and packs w (K, C, KH, KW).
func newPRWeights(geo ConvGeom, w, scale []float32) *prWeights {
	c, k, taps := geo.C, geo.K, geo.KH*geo.KW
	kk := taps * c
	b := make([]float32, kk*k)
	parallelFor(k, func(k0, k1 int) {
		for ko := k0; ko < k1; ko++ {
			s := float32(1)
			if scale != nil {
				s = scale[ko]
			}
			for ci := 0; ci < c; ci++ {
				f := w[(ko*c+ci)*taps : (ko*c+ci+1)*taps]
				for t, v := range f {
					b[(t*c+ci)*k+ko] = s * v
				}
			}
		}
	})
	pw := &prWeights{chunks: make([]*compute.PackedB, (k+patchRowsChunk-1)/patchRowsChunk)}
	parallelFor(len(pw.chunks), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			c0 := i * patchRowsChunk
			pw.chunks[i] = compute.NewPackedB(kk, min(patchRowsChunk, k-c0), b[c0:], k)
		}
	})
	return pw
}

// conv2dPatchRows writes y = ep applied to conv(x, w) as a patch-row
// product (see usePatchRows).
func conv2dPatchRows(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32, s Scratch) {
	d, _ := geo.Weights.Get(patchRowsKind, ep.Scale, func() (Derived, error) {
		return newPRWeights(geo, w, ep.Scale), nil
	})
	pw := d.(*prWeights)
	n, c, k := geo.N, geo.C, geo.K
	hp, wp := geo.H+2*geo.PH, geo.W+2*geo.PW
	p := n * geo.OH * geo.OW
	kk := geo.KH * geo.KW * c

	xt := s.Get(n * hp * wp * c)
	defer s.Put(xt)
	wgPadNHWCAt(geo, x, xt, hp, wp, geo.PH, geo.PW)
	rows := s.Get(p * kk)
	defer s.Put(rows)
	runPooled(p, &prRowJobs, prRowJob{geo: geo, xt: xt, rows: rows, hp: hp, wp: wp})
	// 16 pixels of slack: wgStoreNCHW reads whole 16-pixel blocks.
	yt := s.Get((p + 16) * k)
	defer s.Put(yt)
	runPooled(len(pw.chunks), &prGEMMJobs, prGEMMJob{w: pw, p: p, kk: kk, k: k, rows: rows, yt: yt})
	wgStoreNCHW(geo, yt, geo.OH, geo.OW, ep, y)
}

// prRowJob writes patch rows [lo, hi) from the padded NHWC image xt.
type prRowJob struct {
	geo      ConvGeom
	xt, rows []float32
	hp, wp   int
}

var prRowJobs freelist.List[prRowJob]

func (j *prRowJob) run(lo, hi int) {
	g := &j.geo
	c, run := g.C, g.KW*g.C
	kk := g.KH * run
	ohw := g.OH * g.OW
	for pi := lo; pi < hi; pi++ {
		img, r := pi/ohw, pi%ohw
		ih, iw := (r/g.OW)*g.SH, (r%g.OW)*g.SW
		dst := j.rows[pi*kk : (pi+1)*kk]
		for kh := 0; kh < g.KH; kh++ {
			src := ((img*j.hp+ih+kh)*j.wp + iw) * c
			copy(dst[kh*run:(kh+1)*run], j.xt[src:src+run])
		}
	}
}

// prGEMMJob multiplies the patch rows by column chunks [lo, hi) of the
// packed weights into yt (P x K).
type prGEMMJob struct {
	w        *prWeights
	p, kk, k int
	rows, yt []float32
}

var prGEMMJobs freelist.List[prGEMMJob]

func (j *prGEMMJob) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		j.w.chunks[i].MulSerial(j.p, j.rows, j.kk, j.yt[i*patchRowsChunk:], j.k)
	}
}
