package nn

import (
	"math"
	"os"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/internal/freelist"
)

// Winograd convolution (Lavin & Gray 2015, "Fast Algorithms for
// Convolutional Neural Networks"): a stride-1 3x3 convolution computed as
// F(m x m, 3 x 3) on alpha x alpha input tiles, alpha = m+2. Each input
// tile d becomes V = B^T d B, each 3x3 filter g becomes U = G g G^T (scaled
// by the fused BatchNorm's per-channel scale, transformed once and cached
// in the parameter's WeightCache), the alpha^2 positions xi of the tiles
// are alpha^2 independent GEMMs M_xi = V_xi U_xi over the channels, and
// each output tile is A^T M A, written with the epilogue's shift, residual
// and ReLU. F(4,3) multiplies 36 times per 16 outputs where the direct
// convolution multiplies 144 times; F(2,3) 16 times per 4 (36).
//
// Layout: channels are the vector dimension. The input is copied once into
// a zero-bordered (N, H', W', C) image, so a tile's transform works on
// strided vectors of C floats (wgInTile, wgOutTile: one AVX-512 call per
// tile does both passes for every 16 channels, with the matrices' zeros
// and shared sums left out); V is (xi, P, C) and M (xi, P, K), P = N *
// tiles per image, so the GEMMs are P x C times C x K.

// winogradPlan is one algorithm F(m x m, 3 x 3).
type winogradPlan struct {
	m, alpha int
	bt       []float32 // alpha x alpha: B^T
	at       []float32 // m x alpha: A^T
	g        []float64 // alpha x 3: G
	kind     string    // WeightCache kind of the transformed weights
}

// wgF2 is F(2x2, 3x3): interpolation points 0, 1, -1 and infinity.
var wgF2 = &winogradPlan{
	m: 2, alpha: 4, kind: "cpu/winograd-f2",
	bt: []float32{
		1, 0, -1, 0,
		0, 1, 1, 0,
		0, -1, 1, 0,
		0, 1, 0, -1,
	},
	at: []float32{
		1, 1, 1, 0,
		0, 1, -1, -1,
	},
	g: []float64{
		1, 0, 0,
		0.5, 0.5, 0.5,
		0.5, -0.5, 0.5,
		0, 0, 1,
	},
}

// wgF4 is F(4x4, 3x3): points 0, 1, -1, 2, -2 and infinity.
var wgF4 = &winogradPlan{
	m: 4, alpha: 6, kind: "cpu/winograd-f4",
	bt: []float32{
		4, 0, -5, 0, 1, 0,
		0, -4, -4, 1, 1, 0,
		0, 4, -4, -1, 1, 0,
		0, -2, -1, 2, 1, 0,
		0, 2, -1, -2, 1, 0,
		0, 4, 0, -5, 0, 1,
	},
	at: []float32{
		1, 1, 1, 1, 1, 0,
		0, 1, -1, 2, -2, 0,
		0, 1, 1, 4, 4, 0,
		0, 1, -1, 8, -8, 1,
	},
	g: []float64{
		1.0 / 4, 0, 0,
		-1.0 / 6, -1.0 / 6, -1.0 / 6,
		-1.0 / 6, 1.0 / 6, -1.0 / 6,
		1.0 / 24, 1.0 / 12, 1.0 / 6,
		1.0 / 24, -1.0 / 12, 1.0 / 6,
		0, 0, 1,
	},
}

// winogradMode is DETLAB_WINOGRAD: "off" keeps every convolution on
// im2col, "2" or "4" forces F(2,3) or F(4,3) wherever a convolution
// qualifies, anything else chooses per layer (winogradFor).
var winogradMode = os.Getenv("DETLAB_WINOGRAD")

// winogradDescription says which Winograd variant inference graphs use,
// for CPU.Name.
func winogradDescription() string {
	switch {
	case !hasWinograd:
		return "winograd off (needs AVX-512)"
	case winogradMode == "off":
		return "winograd off (DETLAB_WINOGRAD=off)"
	case winogradMode == "2" || winogradMode == "4":
		return "winograd F(" + winogradMode + ",3) for inference 3x3/1 (DETLAB_WINOGRAD)"
	}
	return "winograd F(4,3)/F(2,3) for inference 3x3/1"
}

// winogradFor returns the Winograd algorithm a convolution runs with, or
// nil for im2col. It qualifies when it is a float32 3x3, stride 1, padding
// 1 convolution on a forward-only graph (inference; training keeps the
// im2col forward its backward is checked against), its weights are a
// parameter's (their transform is cached), both channel counts are
// multiples of 16 (the vector width) and the CPU has the AVX-512 kernels.
// DETLAB_WINOGRAD=2 or 4 forces a plan; otherwise the one with the lower
// wgCost runs.
func winogradFor(geo ConvGeom) *winogradPlan {
	if !hasWinograd || winogradMode == "off" || !geo.forwardOnly || geo.Weights == nil ||
		geo.Precision != Float32 || geo.KH != 3 || geo.KW != 3 || geo.SH != 1 || geo.SW != 1 ||
		geo.PH != 1 || geo.PW != 1 || geo.C%16 != 0 || geo.K%16 != 0 || geo.OH < 2 || geo.OW < 2 {
		return nil
	}
	switch winogradMode {
	case "2":
		return wgF2
	case "4":
		return wgF4
	}
	if wgCost(wgF4, geo) < wgCost(wgF2, geo) {
		return wgF4
	}
	return wgF2
}

// wgWeightTiles is the cost of reading one transformed weight, in units of
// one tile's multiply-add with it (see wgCost).
const wgWeightTiles = 20

// wgCost estimates a plan's time on geo for winogradFor: alpha^2 GEMMs of
// P x C times C x K, P = N * tiles, each of which streams its C x K weights
// from memory (the transformed weights of a network's layers together are
// far larger than the cache: 16 MiB for one 512-channel layer with F(2,3)),
// so cost = alpha^2 * (P + wgWeightTiles) per weight. With few tiles (small
// maps, batch 1) reading F(4,3)'s 36 weight matrices instead of F(2,3)'s
// 16 costs more than its fewer tiles save; with many, its 2.25x fewer
// multiplications win. The constant comes from BenchmarkWinogradLayers
// (CPU time, GOMAXPROCS=1, fastest of 3; F(4,3)'s time over F(2,3)'s,
// estimated / measured): ResNet18 at 224 batch 1: 56x56 0.60/0.36, 28x28
// 0.72/0.74, 14x14 1.17/1.25, 7x7 1.50/1.36; Faster R-CNN at 320: 20x20
// 0.84/0.72, 10x10 1.45/1.52; batch 4: 14x14 0.88/0.96, 7x7 0.96/0.83.
// The one wrong pick is a near tie: 14x14 at batch 2, 0.99/1.05.
func wgCost(pl *winogradPlan, geo ConvGeom) int {
	p := geo.N * ((geo.OH + pl.m - 1) / pl.m) * ((geo.OW + pl.m - 1) / pl.m)
	return pl.alpha * pl.alpha * (p + wgWeightTiles)
}

// wgWeights is a convolution's weights transformed for one plan, U_xi (C x
// K) with the epilogue's scale folded in, each packed as the GEMM's right
// operand; cached under plan.kind.
type wgWeights struct{ u []*compute.PackedB }

// DerivedBytes implements Derived.
func (w *wgWeights) DerivedBytes() int64 {
	var n int64
	for _, u := range w.u {
		n += u.Bytes()
	}
	return n
}

// newWGWeights transforms and packs w for pl.
func newWGWeights(pl *winogradPlan, geo ConvGeom, w, scale []float32) *wgWeights {
	u := winogradWeights(pl, geo, w, scale)
	ck := geo.C * geo.K
	ws := &wgWeights{u: make([]*compute.PackedB, pl.alpha*pl.alpha)}
	parallelFor(len(ws.u), func(e0, e1 int) {
		for e := e0; e < e1; e++ {
			ws.u[e] = compute.NewPackedB(geo.C, geo.K, u[e*ck:(e+1)*ck], geo.K)
		}
	})
	return ws
}

// winogradWeights transforms w (K, C, 3, 3) into U[xi][c][k] = scale[k] *
// (G w[k,c] G^T)[xi], in float64 rounded once.
func winogradWeights(pl *winogradPlan, geo ConvGeom, w, scale []float32) []float32 {
	a, c, k := pl.alpha, geo.C, geo.K
	u := make([]float32, a*a*c*k)
	parallelFor(k, func(k0, k1 int) {
		var tmp [6 * 3]float64
		for ko := k0; ko < k1; ko++ {
			s := 1.0
			if scale != nil {
				s = float64(scale[ko])
			}
			for ci := 0; ci < c; ci++ {
				f := w[(ko*c+ci)*9 : (ko*c+ci)*9+9]
				for r := 0; r < a; r++ { // tmp = G f (alpha x 3)
					for j := 0; j < 3; j++ {
						tmp[r*3+j] = pl.g[r*3]*float64(f[j]) + pl.g[r*3+1]*float64(f[3+j]) + pl.g[r*3+2]*float64(f[6+j])
					}
				}
				for r := 0; r < a; r++ { // tmp G^T (alpha x alpha)
					for q := 0; q < a; q++ {
						v := tmp[r*3]*pl.g[q*3] + tmp[r*3+1]*pl.g[q*3+1] + tmp[r*3+2]*pl.g[q*3+2]
						u[((r*a+q)*c+ci)*k+ko] = float32(v * s)
					}
				}
			}
		}
	})
	return u
}

// conv2dWinograd writes y = ep applied to conv(x, w) with plan pl (see the
// comment at the top of this file).
func conv2dWinograd(pl *winogradPlan, geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32, s Scratch) {
	d, _ := geo.Weights.Get(pl.kind, ep.Scale, func() (Derived, error) {
		return newWGWeights(pl, geo, w, ep.Scale), nil
	})
	u := d.(*wgWeights).u
	m, a := pl.m, pl.alpha
	xi := a * a
	n, c, k := geo.N, geo.C, geo.K
	ty, tx := (geo.OH+m-1)/m, (geo.OW+m-1)/m
	tiles := ty * tx
	p := n * tiles
	hp, wp := ty*m+2, tx*m+2
	oht, owt := ty*m, tx*m

	j := wgJob{l: wgLayer{pl: pl, u: u, c: c, k: k, tiles: tiles, tx: tx, hp: hp, wp: wp, oht: oht, owt: owt},
		p: p, cm: max(c, k)}
	j.l.xt = s.Get(n * hp * wp * c)
	defer s.Put(j.l.xt)
	wgPadNHWC(geo, x, j.l.xt, hp, wp)
	// yt (N, OH', OW', K) = A^T M A per tile. 16 pixels of slack:
	// wgStoreNCHW's 16-pixel blocks read past the last row of a map
	// narrower than 16 (the extra lanes are masked).
	j.l.yt = s.Get((n*oht*owt + 16) * k)
	defer s.Put(j.l.yt)

	if p >= 2*wgBlockTiles {
		// Blocked: each worker takes a contiguous range of tiles and runs
		// it block by block through all three steps.
		j.step, j.workers = wgStepBlocked, min(numWorkers(), p/wgBlockTiles)
		j.per = xi * (wgPlane(wgBlockTiles, c) + wgPlane(wgBlockTiles, k) + j.cm)
		j.buf = s.Get(j.workers * j.per)
		defer s.Put(j.buf)
		runPooled(j.workers, &wgJobs, j)
	} else {
		// Phased: few tiles (small maps at batch 1) would leave a core
		// idle in a blocked schedule; each step is split across the
		// workers in turn, the GEMMs by position xi.
		j.workers = min(numWorkers(), p)
		j.v = s.Get(xi * wgPlane(p, c))
		defer s.Put(j.v)
		j.buf = s.Get(j.workers * xi * j.cm)
		defer s.Put(j.buf)
		j.mm = s.Get(xi * wgPlane(p, k))
		defer s.Put(j.mm)
		j.step = wgStepIn
		runPooled(j.workers, &wgJobs, j)
		j.step = wgStepGEMM
		runPooled(xi, &wgJobs, j)
		j.step = wgStepOut
		runPooled(j.workers, &wgJobs, j)
	}
	wgStoreNCHW(geo, j.l.yt, oht, owt, ep, y)
}

// The parallel steps of conv2dWinograd (wgJob.step).
const (
	wgStepBlocked = iota // part w: worker w's range of tiles, block by block
	wgStepIn             // part w: V of worker w's tiles
	wgStepGEMM           // part e: M[e] = V[e] U[e]
	wgStepOut            // part w: the output transform of worker w's tiles
)

// wgJob is a step of conv2dWinograd as a pooled job (runPooled): a closure
// per step was an allocation per call.
type wgJob struct {
	l              wgLayer
	step           int
	p, workers, cm int
	per            int       // blocked: floats of buf per worker
	buf            []float32 // blocked: V, M and scratch per worker; phased: scratch
	v, mm          []float32 // phased: V (xi, P, C) and M (xi, P, K)
}

var wgJobs freelist.List[wgJob]

func (j *wgJob) run(lo, hi int) {
	l := &j.l
	xi, c, k, p := len(l.u), l.c, l.k, j.p
	switch j.step {
	case wgStepBlocked:
		nv, nm := xi*wgPlane(wgBlockTiles, c), xi*wgPlane(wgBlockTiles, k)
		for wk := lo; wk < hi; wk++ {
			b := j.buf[wk*j.per : (wk+1)*j.per]
			vb, mb, t := b[:nv], b[nv:nv+nm], b[nv+nm:]
			// Ranges and blocks start on whole 12-row strips of the GEMM
			// kernel, so only a range's last block can end in a partial
			// strip.
			t0, t1 := wgStrip(p, wk, j.workers), wgStrip(p, wk+1, j.workers)
			nb := (t1 - t0 + wgBlockTiles - 1) / wgBlockTiles
			bs := (t1 - t0 + 12*nb - 1) / (12 * nb) * 12
			for b0 := t0; b0 < t1; b0 += bs {
				l.block(b0, min(b0+bs, t1), vb, mb, t)
			}
		}
	case wgStepIn, wgStepOut:
		for wk := lo; wk < hi; wk++ {
			t := j.buf[wk*xi*j.cm : (wk+1)*xi*j.cm]
			for pi := p * wk / j.workers; pi < p*(wk+1)/j.workers; pi++ {
				if j.step == wgStepIn {
					l.inTile(pi, j.v[pi*c:], wgPlane(p, c), t)
				} else {
					l.outTile(pi, j.mm[pi*k:], wgPlane(p, k), t)
				}
			}
		}
	case wgStepGEMM:
		for e := lo; e < hi; e++ {
			vs, ms := wgPlane(p, c), wgPlane(p, k)
			l.u[e].MulSerial(p, j.v[e*vs:e*vs+p*c], c, j.mm[e*ms:e*ms+p*k], k)
		}
	}
}

// wgPlane is the distance in floats between two positions' planes of V or
// M (p tiles of n channels each): p*n plus one cache line. Planes a
// multiple of 4 KiB apart (48 tiles x 64 channels is 12 KiB; 16 x 512 is
// 32 KiB) put the 16 or 36 vectors a tile transform stores, one per
// plane, in the same L1 set, more than its ways, and the loads that
// follow alias them; one line of skew spreads them over consecutive sets.
func wgPlane(p, n int) int { return p*n + 16 }

// wgBlockTiles is the most tiles one block of the blocked schedule takes
// through the input transform, the GEMMs and the output transform (four
// 12-row strips of the GEMM kernel), so that its V and M (36 x 48 x 64
// floats each with F(4,3) on 64 channels, 432 KiB) are still in the cache
// for the next step instead of making a round trip to memory (1.8 MiB
// each for ResNet18's 56x56 layer). Layers with fewer than two blocks of
// tiles run the phased schedule.
const wgBlockTiles = 48

// wgStrip returns where part i of n of p tiles starts: p*i/n rounded to a
// multiple of 12, and p for i = n.
func wgStrip(p, i, n int) int {
	if i >= n {
		return p
	}
	return min(p, (p*i/n+6)/12*12)
}

// wgLayer is one Winograd convolution's geometry and its padded NHWC input
// xt and NHWC output yt, for both schedules.
type wgLayer struct {
	pl                                *winogradPlan
	u                                 []*compute.PackedB
	c, k, tiles, tx, hp, wp, oht, owt int
	xt, yt                            []float32
}

// inTile writes tile pi's V[xi] to dst[xi*ds:].
func (l *wgLayer) inTile(pi int, dst []float32, ds int, t []float32) {
	m := l.pl.m
	img, tt := pi/l.tiles, pi%l.tiles
	base := ((img*l.hp+m*(tt/l.tx))*l.wp + m*(tt%l.tx)) * l.c
	wgInTile(l.pl, l.xt[base:], l.wp*l.c, l.c, dst, ds, t, l.c)
}

// outTile writes tile pi's output, from M[xi] = src[xi*ss:], into yt.
func (l *wgLayer) outTile(pi int, src []float32, ss int, t []float32) {
	m := l.pl.m
	img, tt := pi/l.tiles, pi%l.tiles
	base := ((img*l.oht+m*(tt/l.tx))*l.owt + m*(tt%l.tx)) * l.k
	wgOutTile(l.pl, src, ss, l.yt[base:], l.owt*l.k, l.k, t, l.k)
}

// block runs tiles p0..p1-1 (at most wgBlockTiles) through the input
// transform into vb, the GEMMs into mb and the output transform, on the
// calling goroutine; t is the transforms' scratch.
func (l *wgLayer) block(p0, p1 int, vb, mb, t []float32) {
	pb, c, k := p1-p0, l.c, l.k
	vs, ms := wgPlane(pb, c), wgPlane(pb, k)
	for pi := p0; pi < p1; pi++ {
		l.inTile(pi, vb[(pi-p0)*c:], vs, t)
	}
	for e, u := range l.u {
		u.MulSerial(pb, vb[e*vs:e*vs+pb*c], c, mb[e*ms:e*ms+pb*k], k)
	}
	for pi := p0; pi < p1; pi++ {
		l.outTile(pi, mb[(pi-p0)*k:], ms, t)
	}
}

// wgInTile writes one tile's V[xi] = (B^T d B)[xi] (n channels, a multiple
// of 16) to dst[xi*ds:], d[l][j] = src[l*rs+j*cs:] (strides in floats); t
// is scratch of at least alpha^2 * n floats. The AVX-512 kernels use the
// matrices' zeros and shared sums (winograd_amd64.s); the Go loop applies
// the dense matrices (the same values up to rounding).
func wgInTile(pl *winogradPlan, src []float32, rs, cs int, dst []float32, ds int, t []float32, n int) {
	a := pl.alpha
	_ = src[(a-1)*(rs+cs)+n-1]
	_ = dst[(a*a-1)*ds+n-1]
	_ = t[a*a*n-1]
	if hasWinograd {
		if a == 6 {
			wgIn6AVX512(&src[0], rs*4, cs*4, &dst[0], ds*4, &t[0], n/16)
		} else {
			wgIn4AVX512(&src[0], rs*4, cs*4, &dst[0], ds*4, &t[0], n/16)
		}
		return
	}
	for j := 0; j < a; j++ { // columns: t[i][j] = sum_l B^T[i][l] d[l][j]
		wgMatGo(pl.bt, a, a, src[j*cs:], rs, t[j*n:], a*n, n)
	}
	for i := 0; i < a; i++ { // rows: V[i*a+q] = sum_j B^T[q][j] t[i][j]
		wgMatGo(pl.bt, a, a, t[i*a*n:], n, dst[i*a*ds:], ds, n)
	}
}

// wgOutTile writes one tile's y[i][q] = (A^T M A)[i][q] (n channels, a
// multiple of 16) to dst[i*rs+q*cs:], M[xi] = src[xi*ss:] (strides in
// floats); t is scratch of at least alpha^2 * n floats. As wgInTile, the
// AVX-512 kernels use the matrix's structure, the Go loop the dense matrix.
func wgOutTile(pl *winogradPlan, src []float32, ss int, dst []float32, rs, cs int, t []float32, n int) {
	m, a := pl.m, pl.alpha
	_ = src[(a*a-1)*ss+n-1]
	_ = dst[(m-1)*(rs+cs)+n-1]
	_ = t[a*a*n-1]
	if hasWinograd {
		if a == 6 {
			wgOut6AVX512(&src[0], ss*4, &dst[0], rs*4, cs*4, &t[0], n/16)
		} else {
			wgOut4AVX512(&src[0], ss*4, &dst[0], rs*4, cs*4, &t[0], n/16)
		}
		return
	}
	for j := 0; j < a; j++ { // columns: t[i][j] = sum_l A^T[i][l] M[l*a+j]
		wgMatGo(pl.at, m, a, src[j*ss:], a*ss, t[j*n:], a*n, n)
	}
	for i := 0; i < m; i++ { // rows: y[i][q] = sum_j A^T[q][j] t[i][j]
		wgMatGo(pl.at, m, a, t[i*a*n:], n, dst[i*rs:], cs, n)
	}
}

// wgPadNHWC writes x (N, C, H, W) into xt (N, hp, wp, C) one pixel right and
// down, zero elsewhere (the padding and the rows and columns past the last
// whole tile). Rows at least 16 wide are transposed in 16 x 16 blocks
// (the last block of a row overlaps the one before: it rewrites the same
// values).
func wgPadNHWC(geo ConvGeom, x, xt []float32, hp, wp int) {
	wgPadNHWCAt(geo, x, xt, hp, wp, 1, 1)
}

// wgPadNHWCAt is wgPadNHWC with the image ph pixels down and pw right.
func wgPadNHWCAt(geo ConvGeom, x, xt []float32, hp, wp, ph, pw int) {
	runPooled(geo.N*hp, &wgPadJobs, wgPadJob{geo: geo, x: x, xt: xt, hp: hp, wp: wp, ph: ph, pw: pw, vec: hasWinograd && geo.W >= 16})
}

// wgPadJob is wgPadNHWC's loop over padded rows as a pooled job (a closure
// was an allocation per call); vec: by 16 x 16 AVX-512 transposes.
type wgPadJob struct {
	geo    ConvGeom
	x, xt  []float32
	hp, wp int
	ph, pw int // where the image starts
	vec    bool
}

var wgPadJobs freelist.List[wgPadJob]

func (j *wgPadJob) run(r0, r1 int) {
	c, h, w, x, xt, hp, wp, pw := j.geo.C, j.geo.H, j.geo.W, j.x, j.xt, j.hp, j.wp, j.pw
	for nr := r0; nr < r1; nr++ {
		img, r := nr/hp, nr%hp
		row := xt[nr*wp*c : (nr+1)*wp*c]
		ih := r - j.ph
		if ih < 0 || ih >= h {
			clear(row)
			continue
		}
		clear(row[:pw*c])
		clear(row[(w+pw)*c:])
		if !j.vec {
			for ci := 0; ci < c; ci++ {
				src := x[((img*c+ci)*h+ih)*w : ((img*c+ci)*h+ih+1)*w]
				dst := row[pw*c+ci:]
				for iw, val := range src {
					dst[iw*c] = val
				}
			}
			continue
		}
		for c0 := 0; c0 < c; c0 += 16 {
			src := x[((img*c+c0)*h+ih)*w:]
			_ = src[15*h*w+w-1]
			for w0 := 0; w0 < w; w0 += 16 {
				w0 = min(w0, w-16)
				dst := row[(w0+pw)*c+c0:]
				_ = dst[15*c+15]
				transpose16AVX512(&src[w0], h*w*4, &dst[0], c*4)
			}
		}
	}
}

// wgZeros is a row of zeros for wgStore16AVX512's absent shift and residual.
var wgZeros [16]float32

// wgStoreNCHW writes y (N, K, OH, OW) = yt (N, oht, owt, K) cropped, plus
// ep's shift and residual, then its ReLU (the scale is in the weights).
// Rows are transposed in 16 x 16 blocks with the epilogue applied on the
// way: the last block of a row at least 16 wide overlaps the one before (it
// rewrites the same values); a narrower row is one block whose extra
// lanes are masked (yt then needs 16 pixels of slack after its last row).
func wgStoreNCHW(geo ConvGeom, yt []float32, oht, owt int, ep ConvEpilogue, y []float32) {
	if !hasWinograd {
		wgStoreNCHWGo(geo, yt, oht, owt, ep, y)
		return
	}
	mask := uint16(0xffff)
	if geo.OW < 16 {
		mask = 1<<geo.OW - 1
	}
	floor := float32(math.Inf(-1))
	if ep.ReLU {
		floor = 0
	}
	runPooled(geo.N*geo.OH, &wgStoreJobs, wgStoreJob{geo: geo, yt: yt, oht: oht, owt: owt, ep: ep, y: y, floor: floor, mask: mask})
}

// wgStoreJob is wgStoreNCHW's AVX-512 loop over output rows as a pooled
// job.
type wgStoreJob struct {
	geo      ConvGeom
	yt, y    []float32
	oht, owt int
	ep       ConvEpilogue
	floor    float32
	mask     uint16
}

var wgStoreJobs freelist.List[wgStoreJob]

func (j *wgStoreJob) run(r0, r1 int) {
	k, oh, ow, oht, owt, ep, y, yt := j.geo.K, j.geo.OH, j.geo.OW, j.oht, j.owt, &j.ep, j.y, j.yt
	ohw := oh * ow
	for nr := r0; nr < r1; nr++ {
		img, r := nr/oh, nr%oh
		src := yt[(img*oht+r)*owt*k:]
		for k0 := 0; k0 < k; k0 += 16 {
			shift := wgZeros[:]
			if ep.Shift != nil {
				shift = ep.Shift[k0 : k0+16]
			}
			base := (img*k+k0)*ohw + r*ow
			_ = y[base+15*ohw+ow-1]
			for q0 := 0; q0 < ow; q0 += 16 {
				q0 = max(0, min(q0, ow-16))
				s := src[q0*k+k0:]
				_ = s[15*k+15]
				res, resStride := wgZeros[:], 0
				if ep.Residual != nil {
					res, resStride = ep.Residual[base+q0:], ohw*4
					_ = res[15*ohw+min(ow, 16)-1]
				}
				wgStore16AVX512(&s[0], k*4, &y[base+q0], ohw*4, &shift[0], &res[0], resStride, j.floor, j.mask)
			}
		}
	}
}

// wgStoreNCHWGo is wgStoreNCHW in Go.
func wgStoreNCHWGo(geo ConvGeom, yt []float32, oht, owt int, ep ConvEpilogue, y []float32) {
	k, oh, ow := geo.K, geo.OH, geo.OW
	ohw := oh * ow
	parallelFor(geo.N*oh, func(r0, r1 int) {
		var sh [16]float32
		for nr := r0; nr < r1; nr++ {
			img, r := nr/oh, nr%oh
			src := yt[(img*oht+r)*owt*k:]
			for k0 := 0; k0 < k; k0 += 16 {
				if ep.Shift != nil {
					copy(sh[:], ep.Shift[k0:k0+16])
				}
				base := (img*k+k0)*ohw + r*ow
				for kk := 0; kk < 16; kk++ {
					dst := y[base+kk*ohw : base+kk*ohw+ow]
					var res []float32
					if ep.Residual != nil {
						res = ep.Residual[base+kk*ohw : base+kk*ohw+ow]
					}
					s := src[k0+kk:]
					_ = s[(ow-1)*k]
					t := sh[kk]
					switch {
					case res == nil && !ep.ReLU:
						for q := range dst {
							dst[q] = s[q*k] + t
						}
					case res == nil:
						for q := range dst {
							val := s[q*k] + t
							if !(val > 0) && val == val {
								val = 0
							}
							dst[q] = val
						}
					default:
						for q := range dst {
							val := s[q*k] + t + res[q]
							if ep.ReLU && !(val > 0) && val == val {
								val = 0
							}
							dst[q] = val
						}
					}
				}
			}
		}
	})
}

// wgMatGo applies the r x s (s = 4 or 6) coefficient matrix coef to s
// strided vectors of n floats: dst[i*ds+ci] = sum_j coef[i*s+j]*src[j*ss+ci]
// (strides in floats): wgInTile's and wgOutTile's passes without AVX-512.
func wgMatGo(coef []float32, r, s int, src []float32, ss int, dst []float32, ds int, n int) {
	for i := 0; i < r; i++ {
		cf := coef[i*s : i*s+s]
		out := dst[i*ds : i*ds+n]
		for ci := range out {
			var v float32
			if s == 6 {
				v = (cf[0]*src[ci] + cf[1]*src[ss+ci]) + (cf[2]*src[2*ss+ci] + cf[3]*src[3*ss+ci]) +
					(cf[4]*src[4*ss+ci] + cf[5]*src[5*ss+ci])
			} else {
				v = (cf[0]*src[ci] + cf[1]*src[ss+ci]) + (cf[2]*src[2*ss+ci] + cf[3]*src[3*ss+ci])
			}
			out[ci] = v
		}
	}
}
