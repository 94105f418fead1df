package eval

// AreaRange is one of COCO's object-size ranges: an object is in the range
// when Lo <= area <= Hi (both ends inclusive, as pycocotools).
type AreaRange struct {
	Label  string
	Lo, Hi float64
}

// Default COCOeval parameters, exactly as pycocotools' Params for "bbox".
var (
	// maxDets as pycocotools: 1, 10, 100 detections per image and category.
	defaultMaxDets = []int{1, 10, 100}
	// defaultAreaRanges: all, small (< 32^2), medium, large (> 96^2).
	defaultAreaRanges = []AreaRange{
		{Label: "all", Lo: 0, Hi: 1e10},
		{Label: "small", Lo: 0, Hi: 32 * 32},
		{Label: "medium", Lo: 32 * 32, Hi: 96 * 96},
		{Label: "large", Lo: 96 * 96, Hi: 1e10},
	}
)

// IoUThresholds returns np.linspace(.5, .95, 10) bit for bit: 0.5, 0.55, ...,
// 0.85, 0.8999999999999999, 0.95.
func IoUThresholds() []float64 { return linspace(0.5, 0.95, 10) }

// RecallThresholds returns np.linspace(0, 1, 101) bit for bit: i*0.01 for
// i < 100 (ten of them one ulp above i/100, e.g. 0.35000000000000003) and 1.
func RecallThresholds() []float64 { return linspace(0, 1, 101) }

// MaxDets returns pycocotools' default detection limits: 1, 10, 100.
func MaxDets() []int { return append([]int(nil), defaultMaxDets...) }

// AreaRanges returns pycocotools' default area ranges: all [0, 1e10],
// small [0, 1024], medium [1024, 9216], large [9216, 1e10].
func AreaRanges() []AreaRange { return append([]AreaRange(nil), defaultAreaRanges...) }

// linspace follows numpy.linspace for float64 (numpy 1.24): step =
// (stop-start)/(num-1); y = arange(num) * step + start; the last element is
// set to stop.
func linspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	div := float64(num - 1)
	step := (stop - start) / div
	for i := range out {
		// The conversion forces the product to be rounded (no FMA).
		out[i] = float64(float64(i)*step) + start
	}
	out[num-1] = stop
	return out
}
