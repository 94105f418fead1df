package transform

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/internal/workpool"
	"github.com/detlab/detlab/lib/tensor"
)

// Size is an image size in pixels, height first as torchvision writes it.
type Size struct {
	H, W int
}

// String prints the size as HxW.
func (s Size) String() string { return fmt.Sprintf("%dx%d", s.H, s.W) }

// Scale returns the resize factor torchvision's GeneralizedRCNNTransform
// uses for an image of h x w pixels: min(minSize/min(h,w), maxSize/max(h,w)),
// evaluated as torch does it, in float32 with each division computed as a
// reciprocal times the numerator (so 200x500 with max 480 gives 0.96000004,
// not the correctly rounded 0.96).
func Scale(h, w, minSize, maxSize int) float32 {
	lo, hi := float32(min(h, w)), float32(max(h, w))
	a := float32(float32(1)/lo) * float32(minSize)
	b := float32(float32(1)/hi) * float32(maxSize)
	if b < a {
		return b
	}
	return a
}

// ResizedSize returns the size an h x w image is resized to with scale s:
// floor(h*s), floor(w*s) evaluated in float64, as F.interpolate computes it
// with recompute_scale_factor=True. A side that should land on min_size can
// end one pixel short (150x226 with 320/480 becomes 318x479).
func ResizedSize(h, w int, s float32) Size {
	return Size{int(math.Floor(float64(h) * float64(s))), int(math.Floor(float64(w) * float64(s)))}
}

// axis holds, per output index, the two source indices and their weights.
type axis struct {
	i0, i1 []int
	l0, l1 []float32
}

// linearAxis reproduces torch 1.13's upsample_linear index and weight
// arithmetic for align_corners=False without a scale factor: the scale is
// the float32 quotient in/out, the source index is computed in float64 as
// max(scale*(dst+0.5)-0.5, 0), i0 = trunc(src), lambda1 = float32(src-i0),
// lambda0 = 1-lambda1 in float32. (Computing the source index in float32
// instead shifts weights by up to 3e-5; measured against torch.)
func linearAxis(in, out int) axis {
	idx, lambda := make([]int, 2*out), make([]float32, 2*out)
	a := axis{idx[:out:out], idx[out:], lambda[:out:out], lambda[out:]}
	if in == out {
		for d := range out {
			a.i0[d], a.i1[d], a.l0[d], a.l1[d] = d, d, 1, 0
		}
		return a
	}
	scale := float64(float32(in) / float32(out))
	for d := range out {
		src := max(scale*(float64(d)+0.5)-0.5, 0)
		i := min(int(src), in-1)
		off := 0
		if i < in-1 {
			off = 1
		}
		l1 := float32(min(max(src-float64(i), 0), 1))
		a.i0[d], a.i1[d], a.l1[d], a.l0[d] = i, i+off, l1, 1-l1
	}
	return a
}

// axes caches linearAxis's results (read-only once made): a training
// loop resizes the same sizes step after step.
var axes struct {
	sync.Mutex
	m map[[2]int]axis
}

// maxCachedAxes bounds the cache; multi-scale training with many image
// sizes starts it over rather than grow it.
const maxCachedAxes = 64

// cachedAxis is linearAxis(in, out) from the cache.
func cachedAxis(in, out int) axis {
	axes.Lock()
	defer axes.Unlock()
	k := [2]int{in, out}
	if a, ok := axes.m[k]; ok {
		return a
	}
	if axes.m == nil || len(axes.m) >= maxCachedAxes {
		axes.m = make(map[[2]int]axis)
	}
	a := linearAxis(in, out)
	axes.m[k] = a
	return a
}

// fma32 is a float32 fused multiply-add, a*b+c rounded once (through
// float64, whose product of two float32 values is exact).
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// ResizeBilinear resizes a (C,H,W) image to outH x outW with bilinear
// interpolation, align_corners=False and no antialiasing (also when
// shrinking), matching torch's upsample_bilinear2d CPU kernel: per output
// pixel t0 = x00*w0 + x01*w1, t1 = x10*w0 + x11*w1, t0*h0 + t1*h1, in
// float32 with the x*w0 and t0*h0 products fused into the additions as the
// reference build computes them. Rows are computed in parallel.
func ResizeBilinear(img *tensor.Tensor, outH, outW int) (*tensor.Tensor, error) {
	if img == nil || img.Dims() != 3 {
		return nil, fmt.Errorf("transform: resize wants a (C,H,W) image, got %v", shapeOf(img))
	}
	c, h, w := img.Dim(0), img.Dim(1), img.Dim(2)
	if c == 0 || h == 0 || w == 0 {
		return nil, fmt.Errorf("transform: cannot resize an empty image of shape %v", img.Shape())
	}
	if outH <= 0 || outW <= 0 {
		return nil, fmt.Errorf("transform: resize of %v to %dx%d: output size must be positive", img.Shape(), outH, outW)
	}
	out := tensor.New(c, outH, outW)
	resizeInto(out.Data(), outW, outH*outW, img.Data(), c, h, w, outH, outW)
	return out, nil
}

// resizeInto is ResizeBilinear's kernel: it writes the outH x outW resized
// planes of the (c, h, w) image src into dst, whose rows are rowStride and
// planes planeStride apart (so it can write straight into a padded batch).
func resizeInto(dst []float32, rowStride, planeStride int, src []float32, c, h, w, outH, outW int) {
	job := resizeJob{dst: dst, rowStride: rowStride, planeStride: planeStride, src: src,
		h: h, w: w, outH: outH, outW: outW, ay: cachedAxis(h, outH), ax: cachedAxis(w, outW), rows: c * outH}
	job.parts = rowParts(job.rows, outW)
	if job.parts <= 1 {
		job.resizeRows(0, job.rows)
		return
	}
	j := resizeJobs.Get()
	*j = job
	workpool.Run(j.parts, j)
	*j = resizeJob{} // keep no image alive in the pool
	resizeJobs.Put(j)
}

// resizeJob is one resizeInto call as a workpool task over its output
// rows (channel-major); pooled, so a call allocates nothing.
type resizeJob struct {
	dst                    []float32
	rowStride, planeStride int
	src                    []float32
	h, w, outH, outW       int
	ay, ax                 axis
	rows, parts            int
}

var resizeJobs freelist.List[resizeJob]

// Run implements workpool.Task: part p of parts.
func (j *resizeJob) Run(p int) { j.resizeRows(j.rows*p/j.parts, j.rows*(p+1)/j.parts) }

// resizeRows computes output rows [lo, hi).
func (j *resizeJob) resizeRows(lo, hi int) {
	h, w, outH, outW, ay, ax, src := j.h, j.w, j.outH, j.outW, j.ay, j.ax, j.src
	for r := lo; r < hi; r++ {
		ch, y := r/outH, r%outH
		row0 := src[(ch*h+ay.i0[y])*w:][:w]
		row1 := src[(ch*h+ay.i1[y])*w:][:w]
		h0, h1 := ay.l0[y], ay.l1[y]
		o := j.dst[ch*j.planeStride+y*j.rowStride:][:outW]
		for x := range o {
			j0, j1 := ax.i0[x], ax.i1[x]
			w0, w1 := ax.l0[x], ax.l1[x]
			// The order and fusing of torch's compiled kernel
			// (Debian's AVX2 build): bit-identical to it.
			t0 := fma32(row0[j0], w0, float32(row0[j1]*w1))
			t1 := fma32(row1[j0], w0, float32(row1[j1]*w1))
			o[x] = fma32(t0, h0, float32(t1*h1))
		}
	}
}

// rowParts returns how many parts to split rows of rowLen values over:
// one per CPU when the work is large enough to pay for the hand-over.
func rowParts(rows, rowLen int) int {
	workers := runtime.GOMAXPROCS(0)
	if workers <= 1 || rows*rowLen < 1<<15 {
		return 1
	}
	return min(workers, rows)
}

// parallelRows runs fn over [0, rows) split as rowParts says, on
// lib/internal/workpool's workers and the calling goroutine.
func parallelRows(rows, rowLen int, fn func(lo, hi int)) {
	parts := rowParts(rows, rowLen)
	if parts <= 1 {
		fn(0, rows)
		return
	}
	workpool.Run(parts, rangeTask{fn: fn, rows: rows, parts: parts})
}

// rangeTask is parallelRows's call as a workpool task.
type rangeTask struct {
	fn          func(lo, hi int)
	rows, parts int
}

func (t rangeTask) Run(p int) { t.fn(t.rows*p/t.parts, t.rows*(p+1)/t.parts) }

// ResizeBoxes rescales (K,4) boxes (x1,y1,x2,y2) from an image of size from
// to one of size to, as torchvision's resize_boxes does: x by W'/W and y by
// H'/H, each ratio a float32 division of the sizes (not the scale factor).
// Boxes outside the image stay outside: nothing is clipped.
func ResizeBoxes(boxes *tensor.Tensor, from, to Size) (*tensor.Tensor, error) {
	if boxes == nil || boxes.Dims() != 2 || boxes.Dim(1) != 4 {
		return nil, fmt.Errorf("transform: boxes must be (K,4), got %v", shapeOf(boxes))
	}
	if from.H <= 0 || from.W <= 0 || to.H <= 0 || to.W <= 0 {
		return nil, fmt.Errorf("transform: cannot rescale boxes from %v to %v", from, to)
	}
	rh, rw := ResizeRatios(from, to)
	out := boxes.Clone()
	d := out.Data()
	for i := 0; i < len(d); i += 4 {
		d[i] *= rw
		d[i+1] *= rh
		d[i+2] *= rw
		d[i+3] *= rh
	}
	return out, nil
}

// ResizeRatios returns the factors ResizeBoxes multiplies y and x by (in
// float32, one multiplication per coordinate) to take boxes from an image
// of size from to one of size to: H'/H and W'/W, float32 divisions of the
// sizes. For callers that rescale boxes held in another form.
func ResizeRatios(from, to Size) (h, w float32) {
	return float32(to.H) / float32(from.H), float32(to.W) / float32(from.W)
}

func shapeOf(t *tensor.Tensor) any {
	if t == nil {
		return "nil"
	}
	return t.Shape()
}
