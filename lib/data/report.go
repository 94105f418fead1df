package data

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Kind classifies what validation found.
type Kind int

// The kinds of problems. ZeroArea, Clipped, Outside and SizeMismatch are
// always fixed (skipped, clipped, corrected) and counted; the others follow
// Options.OnError.
const (
	// ZeroArea: x1 == x2 or y1 == y2; the box is skipped.
	ZeroArea Kind = iota
	// Clipped: the box reached outside the image and was clipped to it.
	Clipped
	// Outside: the box lies entirely outside the image; skipped.
	Outside
	// SizeMismatch: the annotation's image size differs from the file's;
	// the file's size is used.
	SizeMismatch
	// LooksXYWH: x2 < x1 or y2 < y1 while x1+x2 and y1+y2 fit in the image:
	// probably x,y,w,h where x1,y1,x2,y2 was expected.
	LooksXYWH
	// InvalidBox: inverted, non-finite or unnormalised coordinates.
	InvalidBox
	// UnknownClass: a class name or id not among the classes.
	UnknownClass
	// MissingImage: the image file does not exist.
	MissingImage
	// CorruptImage: the image file cannot be decoded.
	CorruptImage
	// Malformed: an annotation file or entry cannot be parsed.
	Malformed
	// LoadFailed: a Loader could not read, check or augment a sample.
	LoadFailed
	numKinds
)

var kindNames = [numKinds]string{"zero-area box", "clipped box", "box outside the image", "image size mismatch",
	"box looks like x,y,w,h", "invalid box", "unknown class", "missing image", "corrupt image", "malformed annotation", "sample not loaded"}

// String names the kind.
func (k Kind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Sentinel errors, one per kind that Fail turns into an error; test with
// errors.Is.
var (
	ErrLooksXYWH    = errors.New("data: box looks like x,y,w,h")
	ErrInvalidBox   = errors.New("data: invalid box")
	ErrUnknownClass = errors.New("data: unknown class")
	ErrMissingImage = errors.New("data: missing image")
	ErrCorruptImage = errors.New("data: corrupt image")
	ErrMalformed    = errors.New("data: malformed annotation")
)

func (k Kind) sentinel() error {
	switch k {
	case LooksXYWH:
		return ErrLooksXYWH
	case InvalidBox:
		return ErrInvalidBox
	case UnknownClass:
		return ErrUnknownClass
	case MissingImage:
		return ErrMissingImage
	case CorruptImage:
		return ErrCorruptImage
	case Malformed:
		return ErrMalformed
	}
	return nil
}

// Problem is one finding: its kind, the file, the entry within it (such as
// "object 3 (RBC)" or "annotation id 17"), what was wrong and what was done.
// As an error it unwraps to the kind's sentinel and to Err.
type Problem struct {
	Kind   Kind
	File   string
	Entry  string
	Detail string
	Action string // "skipped box", "skipped image", "clipped", ...
	Err    error  // the underlying error, if any
}

// Error formats the problem as "data: file: entry: kind: detail".
func (p *Problem) Error() string {
	var sb strings.Builder
	sb.WriteString("data: ")
	sb.WriteString(p.File)
	if p.Entry != "" {
		sb.WriteString(": ")
		sb.WriteString(p.Entry)
	}
	sb.WriteString(": ")
	sb.WriteString(p.Kind.String())
	if p.Detail != "" {
		sb.WriteString(": ")
		sb.WriteString(p.Detail)
	}
	return sb.String()
}

// Unwrap returns the kind's sentinel and the underlying error.
func (p *Problem) Unwrap() []error {
	var errs []error
	if s := p.Kind.sentinel(); s != nil {
		errs = append(errs, s)
	}
	if p.Err != nil {
		errs = append(errs, p.Err)
	}
	return errs
}

// String is the problem with the action taken.
func (p *Problem) String() string {
	s := strings.TrimPrefix(p.Error(), "data: ")
	if p.Action != "" {
		s += " (" + p.Action + ")"
	}
	return s
}

// Report is what a dataset found when it was opened (or a Loader while it
// ran): how many images and boxes were kept, a count per Kind and the first
// problems in detail. It is safe for concurrent use.
type Report struct {
	// Name says what was checked, such as "voc BCCD/trainval".
	Name string
	// Max is how many problems are kept in detail.
	Max int

	mu       sync.Mutex
	images   int
	boxes    int
	counts   [numKinds]int
	problems []*Problem
}

func newReport(name string, max int) *Report {
	if max <= 0 {
		max = 20
	}
	return &Report{Name: name, Max: max}
}

func (r *Report) add(p *Problem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[p.Kind]++
	if len(r.problems) < r.Max {
		r.problems = append(r.problems, p)
	}
}

func (r *Report) kept(images, boxes int) {
	r.mu.Lock()
	r.images += images
	r.boxes += boxes
	r.mu.Unlock()
}

// Images is the number of images kept.
func (r *Report) Images() int { r.mu.Lock(); defer r.mu.Unlock(); return r.images }

// Boxes is the number of boxes kept.
func (r *Report) Boxes() int { r.mu.Lock(); defer r.mu.Unlock(); return r.boxes }

// Count is the number of problems of kind k.
func (r *Report) Count(k Kind) int {
	if k < 0 || k >= numKinds {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[k]
}

// Total is the number of problems of all kinds.
func (r *Report) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// Problems returns the problems kept in detail (the first Max), in the
// order found.
func (r *Report) Problems() []*Problem {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Problem(nil), r.problems...)
}

// OK reports whether nothing at all was found.
func (r *Report) OK() bool { return r.Total() == 0 }

// String summarises the report over several lines.
func (r *Report) String() string {
	if r == nil {
		return "data: no report"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d images, %d boxes kept", r.Name, r.images, r.boxes)
	total := 0
	for k, c := range r.counts {
		if c > 0 {
			fmt.Fprintf(&sb, "\n  %s: %d", Kind(k), c)
			total += c
		}
	}
	if total == 0 {
		sb.WriteString("; no problems")
		return sb.String()
	}
	fmt.Fprintf(&sb, "\n  first %d of %d problems:", len(r.problems), total)
	for _, p := range r.problems {
		sb.WriteString("\n    ")
		sb.WriteString(p.String())
	}
	return sb.String()
}
