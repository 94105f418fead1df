package data

import (
	"fmt"
	"image"
	"math"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// Background is the name of class 0, which no box carries.
const Background = "__background__"

// Dataset is an indexed collection of annotated images. Implementations must
// be safe for concurrent calls of Sample (the Loader calls it from several
// goroutines) and deterministic: Sample(i) returns the same data every time.
type Dataset interface {
	// Len is the number of samples.
	Len() int
	// Sample returns sample i, 0 <= i < Len(), with its image decoded.
	Sample(i int) (Sample, error)
	// Classes names the classes by label; Classes()[0] is Background.
	Classes() []string
}

// NumClasses is len(ds.Classes()): the num_classes torchvision expects,
// background included.
func NumClasses(ds Dataset) int { return len(ds.Classes()) }

// Sample is one annotated image. Boxes, Labels, Difficult and Crowd have one
// entry per object. Boxes are (x1, y1, x2, y2) in pixels of Image, with no
// +1 (VOC's xmin..xmax are taken as they are written).
type Sample struct {
	// ID names the sample (the VOC image id, the COCO file name, ...).
	ID string
	// Path is the image file, or "" for generated images.
	Path string
	// Image is the picture, 8-bit RGB; readers return *image.RGBA with
	// bounds starting at (0,0).
	Image image.Image
	// Width and Height are Image's size in pixels.
	Width, Height int
	// Boxes are the objects' boxes.
	Boxes []box.Box
	// Labels are class indices into Classes(), 1 or more.
	Labels []int
	// Difficult marks VOC's difficult objects (evaluation ignores them).
	Difficult []bool
	// Crowd marks COCO's iscrowd regions (evaluation ignores them).
	Crowd []bool
	// Pixels, when not nil, is Image as a (3,H,W) float32 tensor in [0,1]
	// (the Loader fills it when LoaderConfig.Tensors is set).
	Pixels *tensor.Tensor
}

// Tensor returns the image as a (3,H,W) float32 tensor in [0,1]: Pixels
// when set, else transform.FromImage(Image).
func (s Sample) Tensor() (*tensor.Tensor, error) {
	if s.Pixels != nil {
		return s.Pixels, nil
	}
	t, err := transform.FromImage(s.Image)
	if err != nil {
		return nil, fmt.Errorf("data: sample %q: %w", s.ID, err)
	}
	return t, nil
}

// BoxTensor returns the boxes as an (N,4) tensor, the form lib/transform
// and the model's targets take.
func (s Sample) BoxTensor() *tensor.Tensor { return box.ToTensor(s.Boxes) }

// Check reports the first inconsistency in s: slices of different lengths,
// a missing image, a size that disagrees with the image, labels outside
// [1, numClasses) (numClasses <= 0 skips that check), non-finite or empty
// boxes. Loaders and trainers call it on samples from user datasets.
func (s Sample) Check(numClasses int) error {
	n := len(s.Boxes)
	if len(s.Labels) != n {
		return fmt.Errorf("data: sample %q: %d boxes but %d labels", s.ID, n, len(s.Labels))
	}
	if s.Difficult != nil && len(s.Difficult) != n {
		return fmt.Errorf("data: sample %q: %d boxes but %d difficult flags", s.ID, n, len(s.Difficult))
	}
	if s.Crowd != nil && len(s.Crowd) != n {
		return fmt.Errorf("data: sample %q: %d boxes but %d crowd flags", s.ID, n, len(s.Crowd))
	}
	if s.Image == nil {
		return fmt.Errorf("data: sample %q: no image", s.ID)
	}
	b := s.Image.Bounds()
	if b.Dx() != s.Width || b.Dy() != s.Height {
		return fmt.Errorf("data: sample %q: Width x Height %dx%d but the image is %dx%d", s.ID, s.Width, s.Height, b.Dx(), b.Dy())
	}
	for i, bx := range s.Boxes {
		if !finite(bx) {
			return fmt.Errorf("data: sample %q: box %d %v is not finite", s.ID, i, bx)
		}
		if bx.X2 <= bx.X1 || bx.Y2 <= bx.Y1 {
			return fmt.Errorf("data: sample %q: box %d %v has no area", s.ID, i, bx)
		}
		if l := s.Labels[i]; l < 1 || (numClasses > 0 && l >= numClasses) {
			return fmt.Errorf("data: sample %q: box %d has label %d, want 1..%d", s.ID, i, l, numClasses-1)
		}
	}
	return nil
}

// clone copies s's annotation slices (not the image), so that an augmenter
// may change them without touching the dataset's.
func (s Sample) clone() Sample {
	c := s
	c.Boxes = append([]box.Box(nil), s.Boxes...)
	c.Labels = append([]int(nil), s.Labels...)
	c.Difficult = append([]bool(nil), s.Difficult...)
	c.Crowd = append([]bool(nil), s.Crowd...)
	return c
}

func finite(b box.Box) bool {
	for _, v := range [4]float32{b.X1, b.Y1, b.X2, b.Y2} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// Policy says what a reader does with a bad entry.
type Policy int

const (
	// Skip leaves the bad entry out (a box, or a whole image when its file
	// is missing, unreadable or malformed) and records why in the Report.
	Skip Policy = iota
	// Fail stops with an error naming the file and the entry.
	Fail
)

// String returns "skip" or "fail".
func (p Policy) String() string {
	switch p {
	case Skip:
		return "skip"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Options tune the readers. The zero value works: classes discovered from
// the annotations, bad entries skipped and reported.
type Options struct {
	// Classes fixes the class names and their order (label i+1 is
	// Classes[i]; a leading Background entry is allowed and ignored).
	// Objects of other classes are UnknownClass problems. Nil: discovered
	// from the annotations and sorted (VOC scans every file in Annotations/
	// so that all splits get the same labels; COCO takes the categories).
	Classes []string
	// OnError chooses between skipping bad entries (default) and failing.
	OnError Policy
	// MaxProblems is how many problems the Report lists in detail; 0 means
	// 20. The counts are always complete.
	MaxProblems int
	// DropEmpty leaves out images that have no boxes after validation.
	DropEmpty bool
	// NoImageCheck skips reading each image's header when the dataset is
	// opened. The header check finds missing and non-image files early and
	// gives the true image size for clipping; without it they surface when
	// the sample is read.
	NoImageCheck bool
}

func firstOptions(opts []Options) (Options, error) {
	switch len(opts) {
	case 0:
		return Options{}, nil
	case 1:
		o := opts[0]
		if o.OnError != Skip && o.OnError != Fail {
			return o, fmt.Errorf("data: unknown OnError policy %d", int(o.OnError))
		}
		if o.MaxProblems < 0 {
			return o, fmt.Errorf("data: MaxProblems %d is negative", o.MaxProblems)
		}
		return o, nil
	}
	return Options{}, fmt.Errorf("data: at most one Options value, got %d", len(opts))
}

// classTable maps names to labels 1..K.
type classTable struct {
	names []string // with Background first
	index map[string]int
}

func newClassTable(names []string) (*classTable, error) {
	if len(names) > 0 && names[0] == Background {
		names = names[1:]
	}
	t := &classTable{names: []string{Background}, index: map[string]int{}}
	for _, n := range names {
		if n == "" || n == Background {
			return nil, fmt.Errorf("data: class name %q is not allowed", n)
		}
		if _, dup := t.index[n]; dup {
			return nil, fmt.Errorf("data: class %q listed twice", n)
		}
		t.index[n] = len(t.names)
		t.names = append(t.names, n)
	}
	return t, nil
}
