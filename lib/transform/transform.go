package transform

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"slices"

	"github.com/detlab/detlab/lib/tensor"
)

// ErrInput reports an image or box set the transform cannot take: wrong
// shape, empty, or holding NaN or infinity.
var ErrInput = errors.New("transform: bad input")

// Config holds GeneralizedRCNNTransform's arguments.
type Config struct {
	// MinSize lists the candidate lengths of the shorter side. Evaluation
	// uses the last one (torchvision's min_size[-1]); training picks one
	// at random per image.
	MinSize []int
	// MaxSize caps the longer side.
	MaxSize int
	// Mean and Std normalise each channel: (x - Mean[c]) / Std[c], in
	// float32. Their length is the number of channels images must have.
	Mean, Std []float64
	// SizeDivisible rounds the padded batch height and width up to a
	// multiple of it; 0 or 1 pads only to the largest image.
	SizeDivisible int
}

// ImageNet's channel statistics, torchvision's defaults.
var (
	ImageNetMean = []float64{0.485, 0.456, 0.406}
	ImageNetStd  = []float64{0.229, 0.224, 0.225}
)

// Defaults returns torchvision's FasterRCNN defaults: min size 800, max size
// 1333, ImageNet mean and std, padding to a multiple of 32.
func Defaults() Config {
	return Config{
		MinSize:       []int{800},
		MaxSize:       1333,
		Mean:          append([]float64(nil), ImageNetMean...),
		Std:           append([]float64(nil), ImageNetStd...),
		SizeDivisible: 32,
	}
}

// Validate reports a configuration the transform cannot use.
func (c Config) Validate() error {
	if len(c.MinSize) == 0 {
		return errors.New("transform: MinSize is empty")
	}
	for _, m := range c.MinSize {
		if m <= 0 {
			return fmt.Errorf("transform: MinSize %v must be positive", c.MinSize)
		}
	}
	if c.MaxSize <= 0 {
		return fmt.Errorf("transform: MaxSize %d must be positive", c.MaxSize)
	}
	if len(c.Mean) == 0 || len(c.Mean) != len(c.Std) {
		return fmt.Errorf("transform: Mean %v and Std %v must have one value per channel", c.Mean, c.Std)
	}
	for _, s := range c.Std {
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("transform: Std %v must be positive", c.Std)
		}
	}
	for _, m := range c.Mean {
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("transform: Mean %v must be finite", c.Mean)
		}
	}
	if c.SizeDivisible < 0 {
		return fmt.Errorf("transform: SizeDivisible %d is negative", c.SizeDivisible)
	}
	return nil
}

// Transform is torchvision's GeneralizedRCNNTransform: normalise, resize by
// the min/max size rule, batch with zero padding, and map detections back.
type Transform struct {
	Config Config
	// Train selects training behaviour: a random MinSize per image.
	Train bool
	// Rand draws the training MinSize; nil uses math/rand's global source.
	Rand *rand.Rand
}

// New checks cfg and returns an evaluation-mode transform.
func New(cfg Config) (*Transform, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Transform{Config: cfg}, nil
}

// ImageList is a padded batch and the sizes needed to undo it, like
// torchvision's ImageList.
type ImageList struct {
	// Tensor is the (N, C, Hp, Wp) batch, each image at the top left with
	// zeros below and to the right.
	Tensor *tensor.Tensor
	// ImageSizes are the resized, unpadded sizes (H', W').
	ImageSizes []Size
	// OriginalSizes are the input sizes (H, W).
	OriginalSizes []Size
	// Scales are the factors s each image was resized by.
	Scales []float32
}

// minSize returns the shorter-side target for the next image.
func (t *Transform) minSize() int {
	ms := t.Config.MinSize
	if !t.Train || len(ms) == 1 {
		return ms[len(ms)-1]
	}
	if t.Rand != nil {
		return ms[t.Rand.Intn(len(ms))]
	}
	return ms[rand.Intn(len(ms))]
}

// check verifies one (C,H,W) image.
func (t *Transform) check(i int, img *tensor.Tensor) error {
	if img == nil || img.Dims() != 3 {
		return fmt.Errorf("%w: image %d must be (C,H,W), got %v", ErrInput, i, shapeOf(img))
	}
	if c := img.Dim(0); c != len(t.Config.Mean) {
		return fmt.Errorf("%w: image %d has %d channels, the transform normalises %d", ErrInput, i, c, len(t.Config.Mean))
	}
	if img.Dim(1) == 0 || img.Dim(2) == 0 {
		return fmt.Errorf("%w: image %d has zero size %dx%d", ErrInput, i, img.Dim(1), img.Dim(2))
	}
	if img.HasNaN() {
		return fmt.Errorf("%w: image %d holds NaN or infinite values", ErrInput, i)
	}
	return nil
}

// Normalize returns (img - Mean[c]) / Std[c] for a (C,H,W) image, computed
// in float32 as torch does.
func (t *Transform) Normalize(img *tensor.Tensor) (*tensor.Tensor, error) {
	if err := t.Config.Validate(); err != nil {
		return nil, err
	}
	if err := t.check(0, img); err != nil {
		return nil, err
	}
	out := tensor.New(img.Shape()...)
	t.normalizeInto(out.Data(), img)
	return out, nil
}

// normalizeInto writes Normalize's result for a checked image into dst.
func (t *Transform) normalizeInto(dst []float32, img *tensor.Tensor) {
	src := img.Data()
	plane := img.Dim(1) * img.Dim(2)
	for c := range img.Dim(0) {
		m, s := float32(t.Config.Mean[c]), float32(t.Config.Std[c])
		p := src[c*plane : (c+1)*plane]
		q := dst[c*plane : (c+1)*plane]
		for i, v := range p {
			q[i] = float32(v-m) / s
		}
	}
}

// Resize resizes one (already normalised) (C,H,W) image for the given
// shorter-side target and the configured MaxSize, returning the resized
// image and its scale factor (see Scale and ResizedSize).
func (t *Transform) Resize(img *tensor.Tensor, minSize int) (*tensor.Tensor, float32, error) {
	if img == nil || img.Dims() != 3 || img.Dim(1) == 0 || img.Dim(2) == 0 {
		return nil, 0, fmt.Errorf("%w: resize wants a non-empty (C,H,W) image, got %v", ErrInput, shapeOf(img))
	}
	if minSize <= 0 {
		return nil, 0, fmt.Errorf("transform: min size %d must be positive", minSize)
	}
	h, w := img.Dim(1), img.Dim(2)
	s := Scale(h, w, minSize, t.Config.MaxSize)
	sz := ResizedSize(h, w, s)
	if sz.H == 0 || sz.W == 0 {
		return nil, 0, fmt.Errorf("%w: a %dx%d image resized by %v has zero size", ErrInput, h, w, s)
	}
	out, err := ResizeBilinear(img, sz.H, sz.W)
	return out, s, err
}

// Apply runs the evaluation (or, with Train, training) transform on a batch:
// each (C,H,W) image in [0,1] is normalised, resized and then all are padded
// into one batch. boxes, when not nil, holds one (K,4) tensor of (x1,y1,x2,y2)
// pixel boxes per image (K may be 0); they are returned rescaled to the
// resized images, unclipped. Inputs are not modified.
//
// An image with NaN or infinite values is rejected with ErrInput rather than
// spread through the network.
func (t *Transform) Apply(images []*tensor.Tensor, boxes []*tensor.Tensor) (*ImageList, []*tensor.Tensor, error) {
	return t.ApplyWith(nil, images, boxes)
}

// Buffers lends float32 buffers; an *nn.Arena is one. Get returns a slice
// of length n with undefined contents; Put takes back a slice from Get.
type Buffers interface {
	Get(n int) []float32
	Put(b []float32)
}

// ApplyWith is Apply with its memory taken from buf, for a training loop
// that should not allocate per step: the normalised image it works on is
// borrowed and given back before it returns, and the batch (il.Tensor)
// lives in a buffer from buf that the caller gives back with
// buf.Put(il.Tensor.Data()) once nothing reads the batch. A nil buf
// allocates, as Apply. The results are Apply's, bit for bit.
func (t *Transform) ApplyWith(buf Buffers, images []*tensor.Tensor, boxes []*tensor.Tensor) (*ImageList, []*tensor.Tensor, error) {
	il := new(ImageList)
	outBoxes, err := t.ApplyTo(il, buf, images, boxes)
	if err != nil {
		return nil, nil, err
	}
	return il, outBoxes, nil
}

// ApplyTo is ApplyWith filling il, whose slices (and batch tensor, when it
// already stands for the same buffer and shape) it reuses: a training loop
// that keeps one ImageList and passes no boxes allocates nothing for the
// batch's description. On error il is left in an unspecified state.
func (t *Transform) ApplyTo(il *ImageList, buf Buffers, images []*tensor.Tensor, boxes []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if il == nil {
		return nil, fmt.Errorf("transform: ApplyTo: nil ImageList")
	}
	if err := t.Config.Validate(); err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("%w: no images", ErrInput)
	}
	if boxes != nil && len(boxes) != len(images) {
		return nil, fmt.Errorf("%w: %d box sets for %d images", ErrInput, len(boxes), len(images))
	}
	for i, img := range images {
		if err := t.check(i, img); err != nil {
			return nil, err
		}
		if boxes != nil {
			b := boxes[i]
			if b == nil || b.Dims() != 2 || b.Dim(1) != 4 {
				return nil, fmt.Errorf("%w: boxes of image %d must be (K,4), got %v", ErrInput, i, shapeOf(b))
			}
			if b.HasNaN() {
				return nil, fmt.Errorf("%w: boxes of image %d hold NaN or infinite values", ErrInput, i)
			}
		}
	}
	if buf == nil {
		buf = heapBuffers{}
	}
	n := len(images)
	il.OriginalSizes = slices.Grow(il.OriginalSizes[:0], n)[:n]
	il.ImageSizes = slices.Grow(il.ImageSizes[:0], n)[:n]
	il.Scales = slices.Grow(il.Scales[:0], n)[:n]
	var outBoxes []*tensor.Tensor
	if boxes != nil {
		outBoxes = make([]*tensor.Tensor, n)
	}
	// Sizes first (drawing the training MinSize image by image, as
	// before), so each image can be resized straight into the batch.
	hp, wp, most := 0, 0, 0
	for i, img := range images {
		h, w := img.Dim(1), img.Dim(2)
		s := Scale(h, w, t.minSize(), t.Config.MaxSize)
		sz := ResizedSize(h, w, s)
		if sz.H == 0 || sz.W == 0 {
			return nil, fmt.Errorf("image %d: %w: a %dx%d image resized by %v has zero size", i, ErrInput, h, w, s)
		}
		il.OriginalSizes[i], il.ImageSizes[i], il.Scales[i] = Size{h, w}, sz, s
		hp, wp, most = max(hp, sz.H), max(wp, sz.W), max(most, img.Len())
		if boxes != nil {
			var err error
			if outBoxes[i], err = ResizeBoxes(boxes[i], il.OriginalSizes[i], sz); err != nil {
				return nil, err
			}
		}
	}
	if d := t.Config.SizeDivisible; d > 1 {
		hp = (hp + d - 1) / d * d
		wp = (wp + d - 1) / d * d
	}
	c := len(t.Config.Mean)
	batch := buf.Get(n * c * hp * wp)
	norm := buf.Get(most)
	for i, img := range images {
		h, w := img.Dim(1), img.Dim(2)
		sz := il.ImageSizes[i]
		t.normalizeInto(norm, img)
		planes := batch[i*c*hp*wp : (i+1)*c*hp*wp]
		// A buffer's contents are undefined: zero the padding.
		for ch := range c {
			p := planes[ch*hp*wp : (ch+1)*hp*wp]
			for y := range sz.H {
				clear(p[y*wp+sz.W : (y+1)*wp])
			}
			clear(p[sz.H*wp:])
		}
		resizeInto(planes, wp, hp*wp, norm, c, h, w, sz.H, sz.W)
	}
	buf.Put(norm)
	if old := il.Tensor; old == nil || len(batch) == 0 || old.Len() != len(batch) || &old.Data()[0] != &batch[0] ||
		!tensor.SameShape(old.Shape(), []int{n, c, hp, wp}) {
		il.Tensor = tensor.MustFromSlice(batch, n, c, hp, wp)
	}
	return outBoxes, nil
}

// heapBuffers is the Buffers of Apply: plain allocation.
type heapBuffers struct{}

func (heapBuffers) Get(n int) []float32 { return make([]float32, n) }
func (heapBuffers) Put([]float32)       {}

// BatchImages copies (C,H,W) images of possibly different sizes into one
// zero-filled (N,C,Hp,Wp) tensor, each at the top left; Hp and Wp are the
// largest height and width rounded up to a multiple of sizeDivisible.
func BatchImages(images []*tensor.Tensor, sizeDivisible int) (*tensor.Tensor, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("%w: no images to batch", ErrInput)
	}
	c, hp, wp := -1, 0, 0
	for i, img := range images {
		if img == nil || img.Dims() != 3 {
			return nil, fmt.Errorf("%w: image %d must be (C,H,W), got %v", ErrInput, i, shapeOf(img))
		}
		if c >= 0 && img.Dim(0) != c {
			return nil, fmt.Errorf("%w: image %d has %d channels, image 0 has %d", ErrInput, i, img.Dim(0), c)
		}
		c = img.Dim(0)
		hp, wp = max(hp, img.Dim(1)), max(wp, img.Dim(2))
	}
	if sizeDivisible > 1 {
		hp = (hp + sizeDivisible - 1) / sizeDivisible * sizeDivisible
		wp = (wp + sizeDivisible - 1) / sizeDivisible * sizeDivisible
	}
	out := tensor.New(len(images), c, hp, wp)
	d := out.Data()
	for n, img := range images {
		h, w := img.Dim(1), img.Dim(2)
		src := img.Data()
		for ch := range c {
			for y := range h {
				copy(d[((n*c+ch)*hp+y)*wp:][:w], src[(ch*h+y)*w:][:w])
			}
		}
	}
	return out, nil
}

// Postprocess maps per-image (K,4) detection boxes from the resized images
// back to the original images: x by W/W', y by H/H' with float32 ratios,
// as torchvision's postprocess does. Nil entries stay nil.
func Postprocess(boxes []*tensor.Tensor, imageSizes, originalSizes []Size) ([]*tensor.Tensor, error) {
	if len(boxes) != len(imageSizes) || len(boxes) != len(originalSizes) {
		return nil, fmt.Errorf("%w: %d box sets, %d image sizes, %d original sizes", ErrInput, len(boxes), len(imageSizes), len(originalSizes))
	}
	out := make([]*tensor.Tensor, len(boxes))
	for i, b := range boxes {
		if b == nil {
			continue
		}
		r, err := ResizeBoxes(b, imageSizes[i], originalSizes[i])
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		out[i] = r
	}
	return out, nil
}

// Postprocess maps detection boxes of this batch back to original image
// coordinates (see the Postprocess function).
func (il *ImageList) Postprocess(boxes []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return Postprocess(boxes, il.ImageSizes, il.OriginalSizes)
}
