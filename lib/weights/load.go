package weights

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/detlab/detlab/lib/tensor"
)

// KeyRule rewrites one name prefix: a source name starting with From has
// From replaced by To, or is dropped when Drop is set.
type KeyRule struct {
	From string
	To   string
	Drop bool
}

// KeyMap renames source tensors before they are matched with a model's
// state dict. The first rule whose From prefixes a name applies; names no
// rule matches keep their name.
type KeyMap []KeyRule

// Apply returns the destination name for a source name, and false when a
// rule drops it.
func (m KeyMap) Apply(name string) (string, bool) {
	for _, r := range m {
		if strings.HasPrefix(name, r.From) {
			if r.Drop {
				return "", false
			}
			return r.To + name[len(r.From):], true
		}
	}
	return name, true
}

// ResNetBodyToFasterRCNN maps an ImageNet ResNet state dict (torchvision's
// resnet18 keys: conv1, bn1, layer1..layer4, fc) onto the body of a
// detection model whose backbone is nn.Sequential(*children[:-2]): conv1 ->
// backbone.0, bn1 -> backbone.1, layer1..layer4 -> backbone.4..backbone.7;
// the classifier fc.* is dropped. Load with AllowMissing, since the heads
// are not in the file.
var ResNetBodyToFasterRCNN = KeyMap{
	{From: "conv1.", To: "backbone.0."},
	{From: "bn1.", To: "backbone.1."},
	{From: "layer1.", To: "backbone.4."},
	{From: "layer2.", To: "backbone.5."},
	{From: "layer3.", To: "backbone.6."},
	{From: "layer4.", To: "backbone.7."},
	{From: "fc.", Drop: true},
}

// LoadOptions control Load. The zero value loads strictly with names as
// they are in the file.
type LoadOptions struct {
	// Keys renames source tensors before matching; nil keeps names.
	Keys KeyMap
	// AllowMissing accepts model tensors that the file does not provide;
	// they keep their current values.
	AllowMissing bool
	// AllowUnexpected ignores file tensors that the model does not have.
	AllowUnexpected bool
}

// Mismatch is a tensor present on both sides with different shapes.
type Mismatch struct {
	Name   string // model (destination) name
	Source string // name in the file
	Model  []int
	File   []int
}

// Report says what Load did.
type Report struct {
	Loaded     []string   // model names that received values
	Missing    []string   // model names the file does not provide
	Unexpected []string   // file names (after mapping) the model does not have
	Dropped    []string   // file names a KeyMap rule dropped
	Mismatched []Mismatch // same name, different shape: never loaded
	Duplicate  []string   // model names that two file tensors map to
	// Defaulted lists BatchNorm num_batches_tracked counters absent from the
	// file while their layer's running_mean is present (checkpoints written
	// before torch tracked it); like torch they are set to 0.
	Defaulted []string
}

// Err returns the error a load with these options reports, or nil.
func (r *Report) Err(opts LoadOptions) error {
	if len(r.Mismatched) > 0 || len(r.Duplicate) > 0 ||
		(len(r.Missing) > 0 && !opts.AllowMissing) ||
		(len(r.Unexpected) > 0 && !opts.AllowUnexpected) {
		return &LoadError{Report: r, Options: opts}
	}
	return nil
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// String lists every problem and a count of what was loaded.
func (r *Report) String() string {
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, plural(len(r.Missing), "missing key")+": "+strings.Join(r.Missing, ", "))
	}
	if len(r.Unexpected) > 0 {
		parts = append(parts, plural(len(r.Unexpected), "unexpected key")+": "+strings.Join(r.Unexpected, ", "))
	}
	if len(r.Mismatched) > 0 {
		var ms []string
		for _, m := range r.Mismatched {
			s := fmt.Sprintf("%s (model %v, file %v", m.Name, m.Model, m.File)
			if m.Source != m.Name {
				s += " as " + m.Source
			}
			ms = append(ms, s+")")
		}
		parts = append(parts, plural(len(ms), "mis-shaped key")+": "+strings.Join(ms, ", "))
	}
	if len(r.Duplicate) > 0 {
		parts = append(parts, plural(len(r.Duplicate), "key")+" given twice by the mapping: "+strings.Join(r.Duplicate, ", "))
	}
	parts = append(parts, fmt.Sprintf("%d loaded, %d dropped, %d defaulted", len(r.Loaded), len(r.Dropped), len(r.Defaulted)))
	return strings.Join(parts, "; ")
}

// ErrKeys is wrapped by a LoadError: the file's tensors do not match the
// model's state dict.
var ErrKeys = errors.New("weights: state dict does not match the file")

// LoadError is returned by Load when names or shapes do not match; nothing
// has been copied. Its Report lists every problem.
type LoadError struct {
	Report  *Report
	Options LoadOptions
}

// Error lists the problems that made the load fail (missing and unexpected
// keys only when the options did not allow them).
func (e *LoadError) Error() string {
	r := *e.Report
	if e.Options.AllowMissing {
		r.Missing = nil
	}
	if e.Options.AllowUnexpected {
		r.Unexpected = nil
	}
	return "weights: load: " + r.String()
}

// Unwrap lets errors.Is(err, ErrKeys) recognise the error.
func (e *LoadError) Unwrap() error { return ErrKeys }

// Load copies the file's tensors into a model's live tensors (a state dict:
// names -> tensors, which Load writes through). File names are first
// rewritten by opts.Keys. It checks everything before copying anything: any
// mis-shaped tensor, any name two file tensors map to, and (unless allowed)
// any missing or unexpected name make it return a *LoadError, which wraps
// ErrKeys and lists all of them sorted, with the model unchanged. Integer
// file tensors (num_batches_tracked) are converted to float32.
func Load(dst map[string]*tensor.Tensor, src *File, opts LoadOptions) (*Report, error) {
	if src == nil {
		return nil, errors.New("weights: load: nil file")
	}
	for name, t := range dst {
		if t == nil {
			return nil, fmt.Errorf("weights: load: model tensor %q is nil", name)
		}
	}
	r := &Report{}
	type pair struct {
		dst *tensor.Tensor
		e   *Entry
	}
	var copies []pair
	from := map[string]string{} // destination -> source
	for _, sname := range src.Names {
		e := src.Entries[sname]
		if e == nil {
			return nil, fmt.Errorf("weights: load: file lists %q without an entry", sname)
		}
		dname, keep := opts.Keys.Apply(sname)
		if !keep {
			r.Dropped = append(r.Dropped, sname)
			continue
		}
		if prev, ok := from[dname]; ok {
			r.Duplicate = append(r.Duplicate, fmt.Sprintf("%s (from %s and %s)", dname, prev, sname))
			continue
		}
		from[dname] = sname
		t, ok := dst[dname]
		if !ok {
			r.Unexpected = append(r.Unexpected, dname)
			continue
		}
		n := len(e.F32Data)
		if e.F32Data == nil {
			n = len(e.I64Data)
		}
		if !tensor.SameShape(t.Shape(), e.Shape) || n != t.Len() {
			r.Mismatched = append(r.Mismatched, Mismatch{Name: dname, Source: sname,
				Model: append([]int{}, t.Shape()...), File: append([]int{}, e.Shape...)})
			continue
		}
		copies = append(copies, pair{t, e})
		r.Loaded = append(r.Loaded, dname)
	}
	var defaulted []*tensor.Tensor
	for dname, t := range dst {
		if _, ok := from[dname]; ok {
			continue
		}
		if base, ok := strings.CutSuffix(dname, "num_batches_tracked"); ok {
			if _, ok := from[base+"running_mean"]; ok {
				r.Defaulted = append(r.Defaulted, dname)
				defaulted = append(defaulted, t)
				continue
			}
		}
		r.Missing = append(r.Missing, dname)
	}
	for _, s := range [][]string{r.Loaded, r.Missing, r.Unexpected, r.Dropped, r.Duplicate, r.Defaulted} {
		sort.Strings(s)
	}
	sort.Slice(r.Mismatched, func(i, j int) bool { return r.Mismatched[i].Name < r.Mismatched[j].Name })
	if err := r.Err(opts); err != nil {
		return r, err
	}
	for _, c := range copies {
		d := c.dst.Data()
		if c.e.F32Data != nil {
			copy(d, c.e.F32Data)
			continue
		}
		for i, v := range c.e.I64Data {
			d[i] = float32(v)
		}
	}
	for _, t := range defaulted {
		clear(t.Data())
	}
	return r, nil
}

// LoadFile reads a weights file of either format (ReadFile) and loads it
// into dst (Load).
func LoadFile(dst map[string]*tensor.Tensor, path string, opts LoadOptions) (*Report, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(dst, f, opts)
}
