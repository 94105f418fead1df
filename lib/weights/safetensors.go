package weights

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/detlab/detlab/lib/tensor"
)

// ErrFormat reports a weights file that is truncated, corrupt or not in the
// format its reader expects.
var ErrFormat = errors.New("weights: bad file format")

// DType names the element type of a stored tensor, as safetensors spells it.
type DType string

// The element types detlab reads and writes.
const (
	F32  DType = "F32"
	F64  DType = "F64"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	BOOL DType = "BOOL"
)

// Entry is one stored tensor: its element type, its shape and its values.
// Floating-point types are widened or narrowed to float32 in F32Data;
// integer types keep their exact values in I64Data.
type Entry struct {
	Name    string
	DType   DType
	Shape   []int
	F32Data []float32 // set for floating-point entries
	I64Data []int64   // set for integer entries
}

// Tensor returns a floating-point entry as a tensor sharing its data. Integer
// entries are converted (num_batches_tracked, label tensors).
func (e *Entry) Tensor() *tensor.Tensor {
	if e.F32Data == nil && e.I64Data != nil {
		f := make([]float32, len(e.I64Data))
		for i, v := range e.I64Data {
			f[i] = float32(v)
		}
		return tensor.MustFromSlice(f, e.Shape...)
	}
	return tensor.MustFromSlice(e.F32Data, e.Shape...)
}

// File is the content of a weights file: named tensors in file order and the
// free-form metadata safetensors allows.
type File struct {
	Names    []string // in the order they appear in the file
	Entries  map[string]*Entry
	Metadata map[string]string
}

// Get returns the named entry or an error naming the missing key.
func (f *File) Get(name string) (*Entry, error) {
	e, ok := f.Entries[name]
	if !ok {
		return nil, fmt.Errorf("weights: no tensor %q in file", name)
	}
	return e, nil
}

type stHeaderEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// maxHeader bounds the JSON header a reader accepts, as the reference
// implementation does (100 MB), so a corrupt length cannot exhaust memory.
const maxHeader = 100 << 20

// ReadSafetensorsFile reads a .safetensors file.
func ReadSafetensorsFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	f, err := ParseSafetensors(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ReadSafetensors reads safetensors data from r.
func ReadSafetensors(r io.Reader) (*File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	return ParseSafetensors(b)
}

// ParseSafetensors decodes safetensors bytes: an 8-byte little-endian header
// length, a JSON header, then the raw little-endian tensor data.
func ParseSafetensors(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: safetensors: %d bytes, shorter than the 8-byte header length", ErrFormat, len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: safetensors: header length %d does not fit in a %d-byte file", ErrFormat, n, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("%w: safetensors header: %v", ErrFormat, err)
	}
	data := b[8+n:]
	f := &File{Entries: make(map[string]*Entry, len(raw)), Metadata: map[string]string{}}
	type placed struct {
		name  string
		begin int64
	}
	var order []placed
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: safetensors __metadata__: %v", ErrFormat, err)
			}
			continue
		}
		var h stHeaderEntry
		if err := json.Unmarshal(msg, &h); err != nil {
			return nil, fmt.Errorf("%w: safetensors entry %q: %v", ErrFormat, name, err)
		}
		e, err := decodeEntry(name, h, data)
		if err != nil {
			return nil, err
		}
		f.Entries[name] = e
		order = append(order, placed{name, h.DataOffsets[0]})
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].begin != order[j].begin {
			return order[i].begin < order[j].begin
		}
		return order[i].name < order[j].name
	})
	// The format requires the tensors to tile the data region exactly:
	// overlapping, gapped or trailing bytes mean a corrupt file.
	var end int64
	for _, p := range order {
		e := f.Entries[p.name]
		if p.begin != end {
			return nil, fmt.Errorf("%w: safetensors entry %q starts at %d, want %d (overlapping or gapped offsets)", ErrFormat, p.name, p.begin, end)
		}
		end = p.begin + int64(len(e.F32Data)+len(e.I64Data))*int64(sizeOf[e.DType])
		f.Names = append(f.Names, p.name)
	}
	if end != int64(len(data)) {
		return nil, fmt.Errorf("%w: safetensors: tensors cover %d of %d data bytes", ErrFormat, end, len(data))
	}
	return f, nil
}

var sizeOf = map[DType]int{F32: 4, I32: 4, F64: 8, I64: 8, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1}

func elemSize(dt DType) (int, error) {
	switch dt {
	case F32, I32:
		return 4, nil
	case F64, I64:
		return 8, nil
	case F16, BF16, I16:
		return 2, nil
	case I8, U8, BOOL:
		return 1, nil
	}
	return 0, fmt.Errorf("%w: unsupported dtype %q", ErrFormat, dt)
}

func decodeEntry(name string, h stHeaderEntry, data []byte) (*Entry, error) {
	dt := DType(h.DType)
	size, err := elemSize(dt)
	if err != nil {
		return nil, fmt.Errorf("safetensors entry %q: %w", name, err)
	}
	if len(h.DataOffsets) != 2 {
		return nil, fmt.Errorf("%w: safetensors entry %q: data_offsets must have 2 values", ErrFormat, name)
	}
	count := int64(1)
	for _, d := range h.Shape {
		if d < 0 || (d > 0 && count > math.MaxInt32/int64(d)) {
			return nil, fmt.Errorf("%w: safetensors entry %q: bad shape %v", ErrFormat, name, h.Shape)
		}
		count *= int64(d)
	}
	begin, end := h.DataOffsets[0], h.DataOffsets[1]
	if begin < 0 || end < begin || end > int64(len(data)) {
		return nil, fmt.Errorf("%w: safetensors entry %q: offsets [%d, %d) outside %d data bytes (truncated file?)", ErrFormat, name, begin, end, len(data))
	}
	if end-begin != count*int64(size) {
		return nil, fmt.Errorf("%w: safetensors entry %q: %d bytes for shape %v of %s", ErrFormat, name, end-begin, h.Shape, dt)
	}
	buf := data[begin:end]
	e := &Entry{Name: name, DType: dt, Shape: append([]int{}, h.Shape...)}
	switch dt {
	case F32:
		e.F32Data = make([]float32, count)
		for i := range e.F32Data {
			e.F32Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
	case F64:
		e.F32Data = make([]float32, count)
		for i := range e.F32Data {
			e.F32Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(buf[8*i:])))
		}
	case F16:
		e.F32Data = make([]float32, count)
		for i := range e.F32Data {
			e.F32Data[i] = HalfToFloat32(binary.LittleEndian.Uint16(buf[2*i:]))
		}
	case BF16:
		e.F32Data = make([]float32, count)
		for i := range e.F32Data {
			e.F32Data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(buf[2*i:])) << 16)
		}
	case I64:
		e.I64Data = make([]int64, count)
		for i := range e.I64Data {
			e.I64Data[i] = int64(binary.LittleEndian.Uint64(buf[8*i:]))
		}
	case I32:
		e.I64Data = make([]int64, count)
		for i := range e.I64Data {
			e.I64Data[i] = int64(int32(binary.LittleEndian.Uint32(buf[4*i:])))
		}
	case I16:
		e.I64Data = make([]int64, count)
		for i := range e.I64Data {
			e.I64Data[i] = int64(int16(binary.LittleEndian.Uint16(buf[2*i:])))
		}
	case I8:
		e.I64Data = make([]int64, count)
		for i := range e.I64Data {
			e.I64Data[i] = int64(int8(buf[i]))
		}
	case U8, BOOL:
		e.I64Data = make([]int64, count)
		for i := range e.I64Data {
			e.I64Data[i] = int64(buf[i])
		}
	}
	return e, nil
}

// HalfToFloat32 converts an IEEE 754 binary16 value to float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise the mantissa
		e := int32(1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | uint32(e+127-15)<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | uint32(exp+127-15)<<23 | mant<<13)
}
