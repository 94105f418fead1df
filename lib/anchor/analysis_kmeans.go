package anchor

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
)

// WH is a box shape: width and height in pixels.
type WH struct {
	W, H float64
}

// shapeIoU is the IoU of two shapes with the same centre.
func shapeIoU(a, b WH) float64 {
	inter := math.Min(a.W, b.W) * math.Min(a.H, b.H)
	return inter / (a.W*a.H + b.W*b.H - inter)
}

// Clusters is what KMeans found.
type Clusters struct {
	// Centroids are the cluster shapes, by increasing area.
	Centroids []WH
	// Counts is the number of boxes of each cluster.
	Counts []int
	// MeanIoU is the mean, over the boxes, of the IoU with the nearest
	// centroid (both centred): YOLO's "avg IoU" fitness.
	MeanIoU float64
}

// KMeans clusters the boxes' shapes (width, height) into k clusters with
// the distance 1 - IoU of centred boxes, as YOLOv2 chose its anchors:
// k-means++ seeding from rand.NewSource(seed), then Lloyd iterations
// (assign to the nearest centroid, move each centroid to its boxes' mean
// width and height) until no assignment changes or 300 iterations. The
// same boxes and seed give the same clusters.
func KMeans(images []ImageBoxes, k int, seed int64) (*Clusters, error) {
	var shapes []WH
	for i, im := range images {
		if err := im.check(); err != nil {
			return nil, fmt.Errorf("anchor: image %d: %w", i, err)
		}
		for _, b := range im.Boxes {
			shapes = append(shapes, WH{W: float64(b.X2 - b.X1), H: float64(b.Y2 - b.Y1)})
		}
	}
	if k <= 0 {
		return nil, fmt.Errorf("%w: k = %d clusters", ErrConfig, k)
	}
	if len(shapes) < k {
		return nil, fmt.Errorf("%w: %d boxes cannot make %d clusters", ErrConfig, len(shapes), k)
	}
	rng := rand.New(rand.NewSource(seed))
	cent := []WH{shapes[rng.Intn(len(shapes))]}
	d := make([]float64, len(shapes))
	for len(cent) < k {
		total := 0.0
		for i, s := range shapes {
			d[i] = math.Inf(1)
			for _, c := range cent {
				d[i] = math.Min(d[i], 1-shapeIoU(s, c))
			}
			d[i] *= d[i]
			total += d[i]
		}
		if total == 0 {
			return nil, fmt.Errorf("%w: the boxes have fewer than %d distinct shapes", ErrConfig, k)
		}
		r := rng.Float64() * total
		pick := len(shapes) - 1
		for i := range shapes {
			r -= d[i]
			if r < 0 {
				pick = i
				break
			}
		}
		cent = append(cent, shapes[pick])
	}
	assign := make([]int, len(shapes))
	for i := range assign {
		assign[i] = -1
	}
	for iter := 0; iter < 300; iter++ {
		changed := false
		for i, s := range shapes {
			best, bi := -1.0, 0
			for j, c := range cent {
				if v := shapeIoU(s, c); v > best {
					best, bi = v, j
				}
			}
			if assign[i] != bi {
				assign[i], changed = bi, true
			}
		}
		if !changed {
			break
		}
		sum := make([]WH, k)
		n := make([]int, k)
		for i, s := range shapes {
			sum[assign[i]].W += s.W
			sum[assign[i]].H += s.H
			n[assign[i]]++
		}
		for j := range cent {
			if n[j] > 0 {
				cent[j] = WH{W: sum[j].W / float64(n[j]), H: sum[j].H / float64(n[j])}
			}
		}
	}
	order := make([]int, k)
	for j := range order {
		order[j] = j
	}
	sort.SliceStable(order, func(a, b int) bool {
		return cent[order[a]].W*cent[order[a]].H < cent[order[b]].W*cent[order[b]].H
	})
	rank := make([]int, k)
	out := &Clusters{Centroids: make([]WH, k), Counts: make([]int, k)}
	for r, j := range order {
		out.Centroids[r] = cent[j]
		rank[j] = r
	}
	total := 0.0
	for i, s := range shapes {
		out.Counts[rank[assign[i]]]++
		total += shapeIoU(s, cent[assign[i]])
	}
	out.MeanIoU = total / float64(len(shapes))
	return out, nil
}

// Suggest proposes a single-level configuration of numSizes sizes and
// numRatios aspect ratios, torchvision's form (every size with every
// ratio): it runs KMeans with numSizes*numRatios clusters, then takes as
// sizes the geometric means of sqrt(w*h) over the clusters grouped by
// area (numRatios consecutive clusters a group, rounded to whole pixels)
// and as ratios the geometric means of h/w over the clusters grouped by
// ratio (numSizes a group, rounded to two decimals). Pass boxes in the
// resized pixels (see Resize).
func Suggest(images []ImageBoxes, numSizes, numRatios int, seed int64) (Config, *Clusters, error) {
	if numSizes <= 0 || numRatios <= 0 {
		return Config{}, nil, fmt.Errorf("%w: %d sizes x %d ratios", ErrConfig, numSizes, numRatios)
	}
	cl, err := KMeans(images, numSizes*numRatios, seed)
	if err != nil {
		return Config{}, nil, err
	}
	c := cl.Centroids
	sizes := make([]float64, numSizes)
	for s := 0; s < numSizes; s++ {
		lg := 0.0
		for _, w := range c[s*numRatios : (s+1)*numRatios] {
			lg += 0.5 * math.Log(w.W*w.H)
		}
		sizes[s] = math.Max(1, math.Round(math.Exp(lg/float64(numRatios))))
	}
	byRatio := append([]WH(nil), c...)
	sort.SliceStable(byRatio, func(a, b int) bool { return byRatio[a].H/byRatio[a].W < byRatio[b].H/byRatio[b].W })
	ratios := make([]float64, numRatios)
	for r := 0; r < numRatios; r++ {
		lg := 0.0
		for _, w := range byRatio[r*numSizes : (r+1)*numSizes] {
			lg += math.Log(w.H / w.W)
		}
		ratios[r] = math.Max(0.01, math.Round(100*math.Exp(lg/float64(numSizes)))/100)
	}
	return Config{Sizes: dedupe(sizes), AspectRatios: dedupe(ratios)}, cl, nil
}

// dedupe drops repeated values of a sorted slice.
func dedupe(v []float64) []float64 {
	out := v[:0:0]
	for i, x := range v {
		if i == 0 || x != v[i-1] {
			out = append(out, x)
		}
	}
	return out
}
