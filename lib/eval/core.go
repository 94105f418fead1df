package eval

import (
	"math"
	"slices"
	"sort"
)

// gtAnn is one ground truth as COCOeval sees it.
type gtAnn struct {
	id         int64
	x, y, w, h float64
	area       float64
	crowd      bool
}

// dtAnn is one detection as COCOeval sees it after loadRes: area = w*h.
type dtAnn struct {
	x, y, w, h float64
	area       float64
	score      float64
}

// dataset is the evaluation input in COCOeval's layout: images and categories
// sorted by id, and per (category, image) the ground truths and detections in
// the order pycocotools lists them (file order within an image).
type dataset struct {
	imgIDs   []int64
	catIDs   []int
	catNames []string
	gts      [][]gtAnn // [k*len(imgIDs)+i]
	dts      [][]dtAnn // [k*len(imgIDs)+i]
	counts   Counts
}

func newDataset(imgIDs []int64, catIDs []int, catNames []string) *dataset {
	n := len(imgIDs) * len(catIDs)
	return &dataset{
		imgIDs:   imgIDs,
		catIDs:   catIDs,
		catNames: catNames,
		gts:      make([][]gtAnn, n),
		dts:      make([][]dtAnn, n),
	}
}

// evalImg is COCOeval.evaluateImg's result for one (category, area range,
// image): the kept detections in score order and, per IoU threshold, the id
// of the matched ground truth (0: none) and the ignore flag.
type evalImg struct {
	scores  []float64
	matched []int64 // [t*D+d]
	ignore  []bool  // [t*D+d]
	npig    int     // ground truths not ignored
}

// bbIou is pycocotools' bbIou (maskApi.c) for one detection and one ground
// truth, with its operations in its order. The explicit conversions stop the
// compiler from fusing a product into an addition.
func bbIou(d *dtAnn, g *gtAnn) float64 {
	da := float64(d.w * d.h)
	ga := float64(g.w * g.h)
	iw := math.Min(d.w+d.x, g.w+g.x) - math.Max(d.x, g.x)
	if iw <= 0 {
		return 0
	}
	ih := math.Min(d.h+d.y, g.h+g.y) - math.Max(d.y, g.y)
	if ih <= 0 {
		return 0
	}
	inter := float64(iw * ih)
	var union float64
	if g.crowd {
		union = da
	} else {
		union = (da + ga) - inter
	}
	return inter / union
}

// sortedDets returns the detections in descending score order (stable, as
// numpy's mergesort on -score) cut to maxDet.
func sortedDets(dts []dtAnn, maxDet int) []dtAnn {
	out := append([]dtAnn(nil), dts...)
	sort.SliceStable(out, func(a, b int) bool { return out[a].score > out[b].score })
	if len(out) > maxDet {
		out = out[:maxDet]
	}
	return out
}

// evaluateImg is COCOeval.evaluateImg for one image and category over all
// area ranges. dts must already be sorted and cut; ious is [d][g] in the
// ground truths' original order (nil when either side is empty).
func evaluateImg(gts []gtAnn, dts []dtAnn, ious [][]float64, aRng AreaRange, iouThrs []float64) *evalImg {
	G, D, T := len(gts), len(dts), len(iouThrs)
	ignoreOf := func(g *gtAnn) bool { return g.crowd || g.area < aRng.Lo || g.area > aRng.Hi }
	// gt order: not ignored first, stably.
	order := make([]int, 0, G)
	for j := range gts {
		if !ignoreOf(&gts[j]) {
			order = append(order, j)
		}
	}
	npig := len(order)
	for j := range gts {
		if ignoreOf(&gts[j]) {
			order = append(order, j)
		}
	}
	gtIg := make([]bool, G)
	for g, j := range order {
		gtIg[g] = ignoreOf(&gts[j])
	}
	e := &evalImg{
		scores:  make([]float64, D),
		matched: make([]int64, T*D),
		ignore:  make([]bool, T*D),
		npig:    npig,
	}
	for d := range dts {
		e.scores[d] = dts[d].score
	}
	if G > 0 && D > 0 {
		taken := make([]bool, G)
		for t, thr := range iouThrs {
			clear(taken)
			for d := 0; d < D; d++ {
				best := math.Min(thr, 1-1e-10)
				m := -1
				row := ious[d]
				for g := 0; g < G; g++ {
					j := order[g]
					if taken[g] && !gts[j].crowd {
						continue
					}
					if m > -1 && !gtIg[m] && gtIg[g] {
						break
					}
					if row[j] < best {
						continue
					}
					best = row[j]
					m = g
				}
				if m == -1 {
					continue
				}
				e.ignore[t*D+d] = gtIg[m]
				e.matched[t*D+d] = gts[order[m]].id
				taken[m] = true
			}
		}
	}
	for d := range dts {
		if dts[d].area >= aRng.Lo && dts[d].area <= aRng.Hi {
			continue
		}
		for t := 0; t < T; t++ {
			if e.matched[t*D+d] == 0 {
				e.ignore[t*D+d] = true
			}
		}
	}
	return e
}

// rawCurve is the uninterpolated precision-recall curve at one IoU: one
// point per detection that is not ignored, in score order.
type rawCurve struct {
	recall, precision, scores []float64
	npig                      int
}

// evaluation holds what evaluate() computed: COCOeval.eval's arrays.
type evaluation struct {
	T, R, K, A, M int
	precision     []float64 // [T][R][K][A][M]
	recall        []float64 // [T][K][A][M]
	scores        []float64 // [T][R][K][A][M]
	raw           []rawCurve
	numDets       []int // per k, detections kept (all ranges, maxDets[-1])
}

func (ev *evaluation) pIndex(t, r, k, a, m int) int {
	return (((t*ev.R+r)*ev.K+k)*ev.A+a)*ev.M + m
}

func (ev *evaluation) rIndex(t, k, a, m int) int {
	return ((t*ev.K+k)*ev.A+a)*ev.M + m
}

// evaluate runs COCOeval.evaluate and accumulate with default parameters.
func evaluate(ds *dataset) *evaluation {
	iouThrs := IoUThresholds()
	recThrs := RecallThresholds()
	areas := defaultAreaRanges
	maxDets := defaultMaxDets
	I, K := len(ds.imgIDs), len(ds.catIDs)
	ev := &evaluation{T: len(iouThrs), R: len(recThrs), K: K, A: len(areas), M: len(maxDets)}
	ev.precision = make([]float64, ev.T*ev.R*K*ev.A*ev.M)
	ev.scores = make([]float64, len(ev.precision))
	ev.recall = make([]float64, ev.T*K*ev.A*ev.M)
	for i := range ev.precision {
		ev.precision[i] = -1
		ev.scores[i] = -1
	}
	for i := range ev.recall {
		ev.recall[i] = -1
	}
	ev.raw = make([]rawCurve, K)
	ev.numDets = make([]int, K)
	maxDet := maxDets[len(maxDets)-1]

	// evaluateImg for every (k, a, i); nil where the image has neither
	// ground truth nor detections of that category.
	evals := make([]*evalImg, K*ev.A*I)
	for k := 0; k < K; k++ {
		for i := 0; i < I; i++ {
			gts, dts := ds.gts[k*I+i], ds.dts[k*I+i]
			if len(gts) == 0 && len(dts) == 0 {
				continue
			}
			dts = sortedDets(dts, maxDet)
			ev.numDets[k] += len(dts)
			var ious [][]float64
			if len(gts) > 0 && len(dts) > 0 {
				ious = make([][]float64, len(dts))
				flat := make([]float64, len(dts)*len(gts))
				for d := range dts {
					ious[d] = flat[d*len(gts) : (d+1)*len(gts)]
					for g := range gts {
						ious[d][g] = bbIou(&dts[d], &gts[g])
					}
				}
			}
			for a, rng := range areas {
				evals[(k*ev.A+a)*I+i] = evaluateImg(gts, dts, ious, rng, iouThrs)
			}
		}
	}

	// accumulate.
	var (
		scores  []float64
		matched []int64
		ignore  []bool
		idx     []int
		tp, fp  []float64
		rc, pr  []float64
	)
	for k := 0; k < K; k++ {
		for a := 0; a < ev.A; a++ {
			for m, md := range maxDets {
				E := evals[(k*ev.A+a)*I : (k*ev.A+a+1)*I]
				// Concatenate the first md detections of each image, per t.
				scores, npig, nonNil := scores[:0], 0, 0
				for _, e := range E {
					if e == nil {
						continue
					}
					nonNil++
					npig += e.npig
					n := min(md, len(e.scores))
					scores = append(scores, e.scores[:n]...)
				}
				if nonNil == 0 || npig == 0 {
					continue
				}
				nd := len(scores)
				matched = growInt64(matched, ev.T*nd)
				ignore = growBool(ignore, ev.T*nd)
				off := 0
				for _, e := range E {
					if e == nil {
						continue
					}
					D := len(e.scores)
					n := min(md, D)
					for t := 0; t < ev.T; t++ {
						copy(matched[t*nd+off:t*nd+off+n], e.matched[t*D:t*D+n])
						copy(ignore[t*nd+off:t*nd+off+n], e.ignore[t*D:t*D+n])
					}
					off += n
				}
				idx = idx[:0]
				for j := 0; j < nd; j++ {
					idx = append(idx, j)
				}
				// Stable by descending score: ties keep concatenation order
				// (image id, then score order within the image), as numpy's
				// mergesort; the index tie-break makes an unstable sort stable.
				slices.SortFunc(idx, func(x, y int) int {
					switch sx, sy := scores[x], scores[y]; {
					case sx > sy:
						return -1
					case sx < sy:
						return 1
					}
					return x - y
				})
				tp, fp = growF64(tp, nd), growF64(fp, nd)
				rc, pr = growF64(rc, nd), growF64(pr, nd)
				for t := 0; t < ev.T; t++ {
					var ntp, nfp int
					for j, s := range idx {
						ig := ignore[t*nd+s]
						hit := matched[t*nd+s] != 0
						if !ig && hit {
							ntp++
						} else if !ig {
							nfp++
						}
						tp[j], fp[j] = float64(ntp), float64(nfp)
					}
					for j := 0; j < nd; j++ {
						rc[j] = tp[j] / float64(npig)
						pr[j] = tp[j] / ((fp[j] + tp[j]) + eps)
					}
					ri := ev.rIndex(t, k, a, m)
					if nd > 0 {
						ev.recall[ri] = rc[nd-1]
					} else {
						ev.recall[ri] = 0
					}
					if t == 0 && a == 0 && m == ev.M-1 {
						ev.raw[k] = rawPR(idx, ignore[:nd], matched[:nd], scores, npig)
					}
					for j := nd - 1; j > 0; j-- {
						if pr[j] > pr[j-1] {
							pr[j-1] = pr[j]
						}
					}
					for r, thr := range recThrs {
						j := sort.SearchFloat64s(rc[:nd], thr)
						pi := ev.pIndex(t, r, k, a, m)
						if j < nd {
							ev.precision[pi] = pr[j]
							ev.scores[pi] = scores[idx[j]]
						} else {
							ev.precision[pi] = 0
							ev.scores[pi] = 0
						}
					}
				}
			}
		}
	}
	return ev
}

// eps is np.spacing(1) for float64.
const eps = 2.220446049250313e-16

// rawPR builds the uninterpolated curve at one IoU threshold from the sorted
// order idx: precision tp/(tp+fp) at each detection that is not ignored.
func rawPR(idx []int, ignore []bool, matched []int64, scores []float64, npig int) rawCurve {
	c := rawCurve{npig: npig}
	var ntp, nfp int
	for _, s := range idx {
		if ignore[s] {
			continue
		}
		if matched[s] != 0 {
			ntp++
		} else {
			nfp++
		}
		c.recall = append(c.recall, float64(ntp)/float64(npig))
		c.precision = append(c.precision, float64(ntp)/float64(ntp+nfp))
		c.scores = append(c.scores, scores[s])
	}
	return c
}

// vocAP is the VOC2010+ all-points average precision of a raw curve: the
// area under its precision envelope (voc_ap with use_07_metric=False).
func vocAP(c rawCurve) float64 {
	if c.npig == 0 {
		return math.NaN()
	}
	n := len(c.recall)
	mrec := make([]float64, n+2)
	mpre := make([]float64, n+2)
	copy(mrec[1:], c.recall)
	copy(mpre[1:], c.precision)
	mrec[n+1] = 1
	for i := n; i > 0; i-- {
		mpre[i] = math.Max(mpre[i], mpre[i+1])
	}
	ap := 0.0
	for i := 0; i < n+1; i++ {
		if mrec[i+1] != mrec[i] {
			ap += (mrec[i+1] - mrec[i]) * mpre[i+1]
		}
	}
	return ap
}

func growInt64(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	return s[:n]
}

func growBool(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	return s[:n]
}

func growF64(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
