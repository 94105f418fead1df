package roialign

import (
	"math"
	"runtime"

	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/internal/workpool"
)

// tap is one feature pixel of a bin's stencil with its weight, already
// divided by the bin's sample count.
type tap struct {
	pos int32 // offset in the channel plane
	w   float32
}

// axisWeight is one pixel row (or column) of a bin with the summed
// interpolation weight of the bin's samples along that axis.
type axisWeight struct {
	idx int32
	w   float32
}

// roiGeom is one roi's stencils on the feature map: bin b averages its
// samples as sum(taps[bins[b]:bins[b+1]].w * plane[pos]).
//
// torchvision averages gridH*gridW bilinear samples per bin. Bilinear
// weights are products of a y weight and an x weight, and a sample counts
// only if both its y and x are in range, so the average factors into
// (sum of y weights per row) x (sum of x weights per column) / count: the
// same value in exact arithmetic, with 9 taps instead of 16 for a typical
// 2x2-sampled bin (results differ from torchvision's only by float32
// rounding, about 1e-7 relative).
type roiGeom struct {
	batch int
	bins  []int32 // OutH*OutW+1 offsets into taps
	taps  []tap
	rows  [][]axisWeight // per ph
	cols  [][]axisWeight // per pw
}

// layout fills g with roi r's stencils. The sample coordinates are computed
// exactly as torchvision's roi_align kernels (float32, same order).
func layout(g *roiGeom, r []float32, h, w int, cfg Config) {
	g.batch = int(r[0])
	scale := cfg.SpatialScale
	var offset float32
	if cfg.Aligned {
		offset = 0.5
	}
	startW := r[1]*scale - offset
	startH := r[2]*scale - offset
	endW := r[3]*scale - offset
	endH := r[4]*scale - offset
	roiW := endW - startW
	roiH := endH - startH
	if !cfg.Aligned {
		roiW = max(roiW, 1)
		roiH = max(roiH, 1)
	}
	binH := roiH / float32(cfg.OutH)
	binW := roiW / float32(cfg.OutW)
	gridH, gridW := cfg.SamplingRatio, cfg.SamplingRatio
	if cfg.SamplingRatio <= 0 {
		gridH = int(math.Ceil(float64(roiH / float32(cfg.OutH))))
		gridW = int(math.Ceil(float64(roiW / float32(cfg.OutW))))
	}
	inv := 1 / float32(max(gridH*gridW, 1))
	g.rows = axisWeights(g.rows, cfg.OutH, gridH, startH, binH, h)
	g.cols = axisWeights(g.cols, cfg.OutW, gridW, startW, binW, w)
	g.bins = g.bins[:0]
	g.taps = g.taps[:0]
	for ph := 0; ph < cfg.OutH; ph++ {
		for pw := 0; pw < cfg.OutW; pw++ {
			g.bins = append(g.bins, int32(len(g.taps)))
			for _, ry := range g.rows[ph] {
				for _, cx := range g.cols[pw] {
					g.taps = append(g.taps, tap{pos: ry.idx*int32(w) + cx.idx, w: ry.w * cx.w * inv})
				}
			}
		}
	}
	g.bins = append(g.bins, int32(len(g.taps)))
}

// axisWeights returns, for each of n bins along one axis, the pixels its
// grid samples touch and their summed linear-interpolation weights, with
// torchvision's rules: a sample outside [-1, size] contributes nothing,
// coordinates <= 0 clamp to 0, and at or beyond the last pixel the sample
// snaps to it.
func axisWeights(dst [][]axisWeight, n, grid int, start, bin float32, size int) [][]axisWeight {
	if cap(dst) < n {
		dst = make([][]axisWeight, n)
	}
	dst = dst[:n]
	fsize := float32(size)
	for p := 0; p < n; p++ {
		ws := dst[p][:0]
		add := func(i int, w float32) {
			for j := range ws {
				if ws[j].idx == int32(i) {
					ws[j].w += w
					return
				}
			}
			ws = append(ws, axisWeight{int32(i), w})
		}
		for i := 0; i < grid; i++ {
			v := start + float32(float32(p)*bin) + float32(float32(float32(i)+0.5)*bin)/float32(grid)
			if v < -1 || v > fsize {
				continue
			}
			if v <= 0 {
				v = 0
			}
			lo := int(v)
			if lo >= size-1 {
				add(size-1, 1)
				continue
			}
			l := v - float32(lo)
			add(lo, 1-l)
			add(lo+1, l)
		}
		dst[p] = ws
	}
	return dst
}

// minParallelWork is the number of sample evaluations (K*C*samples) under
// which the kernels stay on the calling goroutine.
const minParallelWork = 1 << 15

// workers returns how many goroutines to split units of work over.
func workers(units, work int) int {
	if work < minParallelWork {
		return 1
	}
	return max(1, min(runtime.GOMAXPROCS(0), units))
}

// kernelJob is one forward or backward call as a workpool task: part i of
// nw does units [units*i/nw, units*(i+1)/nw) (rois forward, channels
// backward). Jobs are pooled, so a call allocates nothing (a closure and
// a goroutine per range did).
type kernelJob struct {
	backward bool
	// forward: out, features; backward: grad, gradOut.
	dst, src  []float32
	s         Shape
	rois      []float32
	k         int
	cfg       Config
	units, nw int
}

var kernelJobs freelist.List[kernelJob]

// Run implements workpool.Task.
func (j *kernelJob) Run(part int) {
	lo, hi := j.units*part/j.nw, j.units*(part+1)/j.nw
	if lo == hi {
		return
	}
	if j.backward {
		backwardRange(j.dst, j.src, j.s, j.rois, j.k, j.cfg, lo, hi)
	} else {
		forwardRange(j.dst, j.src, j.s, j.rois, j.cfg, lo, hi)
	}
}

// run runs job (units and nw set) over its parts on lib/internal/workpool.
func run(job kernelJob) {
	if job.nw <= 1 {
		job.nw = 1
		job.Run(0)
		return
	}
	j := kernelJobs.Get()
	*j = job
	workpool.Run(j.nw, j)
	*j = kernelJob{} // keep no buffers alive in the pool
	kernelJobs.Put(j)
}

// geomPool reuses roi layouts between calls.
var geomPool freelist.List[roiGeom] // not emptied by a collection, unlike a sync.Pool

// estWork approximates the kernel's sample evaluations.
func estWork(k int, s Shape, cfg Config) int {
	g := max(cfg.SamplingRatio, 2)
	return k * s.C * cfg.OutH * cfg.OutW * g * g
}

// forward computes out (K, C, OutH, OutW), parallel over rois.
func forward(out, features []float32, s Shape, rois []float32, k int, cfg Config) {
	run(kernelJob{dst: out, src: features, s: s, rois: rois, k: k, cfg: cfg, units: k, nw: workers(k, estWork(k, s, cfg))})
}

// forwardRange is forward for rois [lo, hi).
func forwardRange(out, features []float32, s Shape, rois []float32, cfg Config, lo, hi int) {
	plane := s.H * s.W
	nbins := cfg.OutH * cfg.OutW
	g := geomPool.Get()
	defer geomPool.Put(g)
	for r := lo; r < hi; r++ {
		layout(g, rois[r*5:r*5+5], s.H, s.W, cfg)
		c := 0
		// Four channels at a time share each tap's loads.
		for ; c+4 <= s.C; c += 4 {
			base := (g.batch*s.C + c) * plane
			f0 := features[base : base+plane]
			f1 := features[base+plane : base+2*plane]
			f2 := features[base+2*plane : base+3*plane]
			f3 := features[base+3*plane : base+4*plane]
			ob := (r*s.C + c) * nbins
			o0 := out[ob : ob+nbins]
			o1 := out[ob+nbins : ob+2*nbins]
			o2 := out[ob+2*nbins : ob+3*nbins]
			o3 := out[ob+3*nbins : ob+4*nbins]
			for b := range o0 {
				var v0, v1, v2, v3 float32
				for _, t := range g.taps[g.bins[b]:g.bins[b+1]] {
					v0 += t.w * f0[t.pos]
					v1 += t.w * f1[t.pos]
					v2 += t.w * f2[t.pos]
					v3 += t.w * f3[t.pos]
				}
				o0[b], o1[b], o2[b], o3[b] = v0, v1, v2, v3
			}
		}
		for ; c < s.C; c++ {
			f := features[(g.batch*s.C+c)*plane : (g.batch*s.C+c+1)*plane]
			o := out[(r*s.C+c)*nbins : (r*s.C+c+1)*nbins]
			for b := range o {
				var v float32
				for _, t := range g.taps[g.bins[b]:g.bins[b+1]] {
					v += t.w * f[t.pos]
				}
				o[b] = v
			}
		}
	}
}

// backward adds the feature gradient into grad, parallel over channel
// ranges: each goroutine owns its channels of every image, and visits rois
// in order, so the sum is race-free and independent of the worker count.
func backward(grad, gradOut []float32, s Shape, rois []float32, k int, cfg Config) {
	if k == 0 {
		return
	}
	run(kernelJob{backward: true, dst: grad, src: gradOut, s: s, rois: rois, k: k, cfg: cfg, units: s.C, nw: workers(s.C, estWork(k, s, cfg))})
}

// backwardRange is backward for channels [c0, c1).
func backwardRange(grad, gradOut []float32, s Shape, rois []float32, k int, cfg Config, c0, c1 int) {
	plane := s.H * s.W
	nbins := cfg.OutH * cfg.OutW
	g := geomPool.Get()
	defer geomPool.Put(g)
	for r := 0; r < k; r++ {
		layout(g, rois[r*5:r*5+5], s.H, s.W, cfg)
		c := c0
		for ; c+4 <= c1; c += 4 {
			base := (g.batch*s.C + c) * plane
			g0 := grad[base : base+plane]
			g1 := grad[base+plane : base+2*plane]
			g2 := grad[base+2*plane : base+3*plane]
			g3 := grad[base+3*plane : base+4*plane]
			ob := (r*s.C + c) * nbins
			o0 := gradOut[ob : ob+nbins]
			o1 := gradOut[ob+nbins : ob+2*nbins]
			o2 := gradOut[ob+2*nbins : ob+3*nbins]
			o3 := gradOut[ob+3*nbins : ob+4*nbins]
			for b := range o0 {
				v0, v1, v2, v3 := o0[b], o1[b], o2[b], o3[b]
				for _, t := range g.taps[g.bins[b]:g.bins[b+1]] {
					g0[t.pos] += v0 * t.w
					g1[t.pos] += v1 * t.w
					g2[t.pos] += v2 * t.w
					g3[t.pos] += v3 * t.w
				}
			}
		}
		for ; c < c1; c++ {
			gf := grad[(g.batch*s.C+c)*plane : (g.batch*s.C+c+1)*plane]
			gout := gradOut[(r*s.C+c)*nbins : (r*s.C+c+1)*nbins]
			for b, gv := range gout {
				for _, t := range g.taps[g.bins[b]:g.bins[b+1]] {
					gf[t.pos] += gv * t.w
				}
			}
		}
	}
}
