package roialign

import (
	"math"
	"runtime"
	"sync"
)

// sample is one bilinear sampling point: four plane offsets and weights.
// Samples outside the feature map (which contribute nothing) are dropped
// from the list but still counted in the bin's average.
type sample struct {
	pos [4]int32
	w   [4]float32
}

// roiGeom is one roi's sampling layout on the feature map.
type roiGeom struct {
	batch  int
	gridH  int // samples per bin along y
	gridW  int
	count  float32  // gridH*gridW (at least 1): the divisor of every bin
	bins   []int32  // bins[b]..bins[b+1] index the samples of bin b (OutH*OutW+1 entries)
	points []sample // in bin order, then iy, then ix
}

// layout fills g with roi r's samples, exactly as torchvision's
// roi_align_forward_kernel_impl / pre_calc_for_bilinear_interpolate (float32
// arithmetic in the same order).
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
	g.gridH, g.gridW = cfg.SamplingRatio, cfg.SamplingRatio
	if cfg.SamplingRatio <= 0 {
		g.gridH = int(math.Ceil(float64(roiH / float32(cfg.OutH))))
		g.gridW = int(math.Ceil(float64(roiW / float32(cfg.OutW))))
	}
	g.count = float32(max(g.gridH*g.gridW, 1))
	g.bins = g.bins[:0]
	g.points = g.points[:0]
	fh, fw := float32(h), float32(w)
	for ph := 0; ph < cfg.OutH; ph++ {
		for pw := 0; pw < cfg.OutW; pw++ {
			g.bins = append(g.bins, int32(len(g.points)))
			for iy := 0; iy < g.gridH; iy++ {
				yy := startH + float32(float32(ph)*binH) + float32(float32(float32(iy)+0.5)*binH)/float32(g.gridH)
				for ix := 0; ix < g.gridW; ix++ {
					xx := startW + float32(float32(pw)*binW) + float32(float32(float32(ix)+0.5)*binW)/float32(g.gridW)
					if s, ok := bilinear(yy, xx, h, w, fh, fw); ok {
						g.points = append(g.points, s)
					}
				}
			}
		}
	}
	g.bins = append(g.bins, int32(len(g.points)))
}

// bilinear returns the sample at (y, x) with torchvision's rules: outside
// [-1, h] x [-1, w] it contributes nothing; coordinates <= 0 clamp to 0; at
// or beyond the last row/column the sample snaps to it.
func bilinear(y, x float32, h, w int, fh, fw float32) (sample, bool) {
	if y < -1 || y > fh || x < -1 || x > fw {
		return sample{}, false
	}
	if y <= 0 {
		y = 0
	}
	if x <= 0 {
		x = 0
	}
	yLow, xLow := int(y), int(x)
	var yHigh, xHigh int
	if yLow >= h-1 {
		yLow, yHigh = h-1, h-1
		y = float32(yLow)
	} else {
		yHigh = yLow + 1
	}
	if xLow >= w-1 {
		xLow, xHigh = w-1, w-1
		x = float32(xLow)
	} else {
		xHigh = xLow + 1
	}
	ly := y - float32(yLow)
	lx := x - float32(xLow)
	hy, hx := 1-ly, 1-lx
	return sample{
		pos: [4]int32{int32(yLow*w + xLow), int32(yLow*w + xHigh), int32(yHigh*w + xLow), int32(yHigh*w + xHigh)},
		w:   [4]float32{hy * hx, hy * lx, ly * hx, ly * lx},
	}, true
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

// parallel runs f over [0, units) split into contiguous ranges, one per
// worker.
func parallel(units, nw int, f func(lo, hi int)) {
	if nw <= 1 {
		f(0, units)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < nw; i++ {
		lo, hi := units*i/nw, units*(i+1)/nw
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// geomPool reuses roi layouts between calls.
var geomPool = sync.Pool{New: func() any { return new(roiGeom) }}

// estWork approximates the kernel's sample evaluations.
func estWork(k int, s Shape, cfg Config) int {
	g := max(cfg.SamplingRatio, 2)
	return k * s.C * cfg.OutH * cfg.OutW * g * g
}

// forward computes out (K, C, OutH, OutW), parallel over rois.
func forward(out, features []float32, s Shape, rois []float32, k int, cfg Config) {
	plane := s.H * s.W
	nbins := cfg.OutH * cfg.OutW
	parallel(k, workers(k, estWork(k, s, cfg)), func(lo, hi int) {
		g := geomPool.Get().(*roiGeom)
		defer geomPool.Put(g)
		for r := lo; r < hi; r++ {
			layout(g, rois[r*5:r*5+5], s.H, s.W, cfg)
			for c := 0; c < s.C; c++ {
				f := features[(g.batch*s.C+c)*plane : (g.batch*s.C+c+1)*plane]
				o := out[(r*s.C+c)*nbins : (r*s.C+c+1)*nbins]
				for b := range o {
					var v float32
					for _, p := range g.points[g.bins[b]:g.bins[b+1]] {
						v += float32(float32(float32(p.w[0]*f[p.pos[0]])+float32(p.w[1]*f[p.pos[1]]))+float32(p.w[2]*f[p.pos[2]])) + float32(p.w[3]*f[p.pos[3]])
					}
					o[b] = v / g.count
				}
			}
		}
	})
}

// backward adds the feature gradient into grad, parallel over channel
// ranges: each goroutine owns its channels of every image, and visits rois
// in order, so the sum is race-free and independent of the worker count.
func backward(grad, gradOut []float32, s Shape, rois []float32, k int, cfg Config) {
	if k == 0 {
		return
	}
	plane := s.H * s.W
	nbins := cfg.OutH * cfg.OutW
	parallel(s.C, workers(s.C, estWork(k, s, cfg)), func(c0, c1 int) {
		g := geomPool.Get().(*roiGeom)
		defer geomPool.Put(g)
		for r := 0; r < k; r++ {
			layout(g, rois[r*5:r*5+5], s.H, s.W, cfg)
			for c := c0; c < c1; c++ {
				gf := grad[(g.batch*s.C+c)*plane : (g.batch*s.C+c+1)*plane]
				gout := gradOut[(r*s.C+c)*nbins : (r*s.C+c+1)*nbins]
				for b, gv := range gout {
					for _, p := range g.points[g.bins[b]:g.bins[b+1]] {
						gf[p.pos[0]] += float32(gv*p.w[0]) / g.count
						gf[p.pos[1]] += float32(gv*p.w[1]) / g.count
						gf[p.pos[2]] += float32(gv*p.w[2]) / g.count
						gf[p.pos[3]] += float32(gv*p.w[3]) / g.count
					}
				}
			}
		}
	})
}
