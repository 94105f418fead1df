package roialign

import (
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/tensor"
)

// MultiScale is torchvision.ops.MultiScaleRoIAlign for a single feature
// level (a backbone without FPN): it takes boxes per image, infers the
// spatial scale from the feature map and the image sizes the first time it
// runs, and caches it, as torchvision does.
type MultiScale struct {
	// OutH, OutW and SamplingRatio are as in Config (torchvision's defaults
	// for Faster R-CNN: 7, 7, 2).
	OutH, OutW, SamplingRatio int
	// Aligned is passed on to roi_align (torchvision's MultiScaleRoIAlign
	// always uses false).
	Aligned bool

	scale    float32 // inferred spatial scale; 0 until the first Forward
	inferred bool
}

// NewMultiScale returns a MultiScale with the given output size and
// sampling ratio, aligned false.
func NewMultiScale(outSize, samplingRatio int) *MultiScale {
	return &MultiScale{OutH: outSize, OutW: outSize, SamplingRatio: samplingRatio}
}

// InferScale returns torchvision's MultiScaleRoIAlign scale for a feature map
// of height featH when the largest image height in the batch is maxImageH:
// 2**round(log2(featH/maxImageH)), the log taken in float32 and rounded half
// to even, as torch.tensor(approx).log2().round().
func InferScale(featH, maxImageH int) (float32, error) {
	if featH <= 0 || maxImageH <= 0 {
		return 0, fmt.Errorf("%w: cannot infer scale from feature height %d and image height %d", ErrInput, featH, maxImageH)
	}
	approx := float32(float64(featH) / float64(maxImageH))
	lg := float32(math.Log2(float64(approx)))
	return float32(math.Pow(2, math.RoundToEven(float64(lg)))), nil
}

// Scale returns the cached spatial scale and whether it has been inferred.
func (m *MultiScale) Scale() (float32, bool) { return m.scale, m.inferred }

// Config returns the roi_align configuration the module runs with once its
// scale is known.
func (m *MultiScale) Config() Config {
	return Config{OutH: m.OutH, OutW: m.OutW, SamplingRatio: m.SamplingRatio, SpatialScale: m.scale, Aligned: m.Aligned}
}

// Rois converts per-image boxes (each a flat list of x1, y1, x2, y2) to the
// (K, 5) roi tensor roi_align takes, rows prefixed by the image index
// (torchvision's _convert_to_roi_format).
func Rois(boxes [][]float32) (*tensor.Tensor, error) {
	k, err := countRois(boxes)
	if err != nil {
		return nil, err
	}
	out := tensor.New(k, 5)
	roisInto(out.Data(), boxes)
	return out, nil
}

// countRois checks Rois's boxes and returns how many there are.
func countRois(boxes [][]float32) (int, error) {
	k := 0
	for i, b := range boxes {
		if len(b)%4 != 0 {
			return 0, fmt.Errorf("%w: boxes of image %d have %d values, want a multiple of 4", ErrInput, i, len(b))
		}
		k += len(b) / 4
	}
	return k, nil
}

// roisInto writes Rois's rows into d (5 values per box).
func roisInto(d []float32, boxes [][]float32) {
	j := 0
	for i, b := range boxes {
		for p := 0; p+4 <= len(b); p += 4 {
			d[j] = float32(i)
			copy(d[j+1:j+5], b[p:p+4])
			j += 5
		}
	}
}

// Setup validates a call and returns what roi_align runs with: the rois
// (K, 5) built from boxes (one flat x1,y1,x2,y2 list per image of a batch of
// featureShape[0]) and the configuration. The first successful call infers
// and caches the scale from the feature HEIGHT and the largest image height;
// later calls reuse it whatever their sizes, as torchvision's module does.
func (m *MultiScale) Setup(featureShape []int, boxes [][]float32, imageSizes [][2]int) (*tensor.Tensor, Config, error) {
	s, err := shapeOf("features", featureShape)
	if err != nil {
		return nil, Config{}, err
	}
	if len(boxes) != s.N {
		return nil, Config{}, fmt.Errorf("%w: %d box lists for a batch of %d images", ErrInput, len(boxes), s.N)
	}
	rois, err := Rois(boxes)
	if err != nil {
		return nil, Config{}, err
	}
	if _, err := CheckRois(rois.Data(), s.N); err != nil {
		return nil, Config{}, err
	}
	if !m.inferred {
		if len(imageSizes) == 0 {
			return nil, Config{}, fmt.Errorf("%w: no image sizes to infer the scale from", ErrInput)
		}
		maxH := 0
		for _, sz := range imageSizes {
			if sz[0] <= 0 || sz[1] <= 0 {
				return nil, Config{}, fmt.Errorf("%w: image size %v, want positive", ErrInput, sz)
			}
			maxH = max(maxH, sz[0])
		}
		sc, err := InferScale(s.H, maxH)
		if err != nil {
			return nil, Config{}, err
		}
		m.scale, m.inferred = sc, true
	}
	cfg := m.Config()
	if err := cfg.Validate(); err != nil {
		return nil, Config{}, err
	}
	return rois, cfg, nil
}

// Forward pools features (N, C, H, W) over boxes, one flat x1,y1,x2,y2 list
// per image, given each image's (H, W) size (see Setup for the scale).
func (m *MultiScale) Forward(features *tensor.Tensor, boxes [][]float32, imageSizes [][2]int) (*tensor.Tensor, error) {
	if features == nil {
		return nil, fmt.Errorf("%w: features is nil", ErrInput)
	}
	rois, cfg, err := m.Setup(features.Shape(), boxes, imageSizes)
	if err != nil {
		return nil, err
	}
	return Forward(features, rois, cfg)
}
