package weights

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/detlab/detlab/lib/tensor"
)

// FromTensors builds a File from a state dict (names -> tensors), names in
// sorted order. Tensors whose name ends in "num_batches_tracked" become I64
// scalars, as torch stores them; every other tensor is F32. The entries share
// no memory with the tensors.
func FromTensors(tensors map[string]*tensor.Tensor, metadata map[string]string) (*File, error) {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	return FromTensorsInOrder(names, tensors, metadata)
}

// FromTensorsInOrder is FromTensors with the file order given by names (for
// example a model's state-dict keys in module order); names must list every
// key of tensors exactly once.
func FromTensorsInOrder(names []string, tensors map[string]*tensor.Tensor, metadata map[string]string) (*File, error) {
	f := &File{Names: append([]string(nil), names...), Entries: make(map[string]*Entry, len(tensors)), Metadata: map[string]string{}}
	for k, v := range metadata {
		f.Metadata[k] = v
	}
	if len(names) != len(tensors) {
		return nil, fmt.Errorf("weights: %d names for %d tensors", len(names), len(tensors))
	}
	for _, name := range f.Names {
		if _, ok := tensors[name]; !ok {
			return nil, fmt.Errorf("weights: no tensor named %q", name)
		}
		if _, dup := f.Entries[name]; dup {
			return nil, fmt.Errorf("weights: name %q given twice", name)
		}
		t := tensors[name]
		if t == nil {
			return nil, fmt.Errorf("weights: tensor %q is nil", name)
		}
		e := &Entry{Name: name, Shape: append([]int{}, t.Shape()...)}
		if strings.HasSuffix(name, "num_batches_tracked") {
			e.DType = I64
			e.I64Data = make([]int64, t.Len())
			for i, v := range t.Data() {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("weights: tensor %q: %v is not a count", name, v)
				}
				e.I64Data[i] = int64(math.Round(float64(v)))
			}
		} else {
			e.DType = F32
			e.F32Data = append([]float32(nil), t.Data()...)
		}
		f.Entries[name] = e
	}
	return f, nil
}

// Tensors returns the file's entries as tensors (integer entries converted
// to float32), keyed by name. Floating-point tensors share the entries' data.
func (f *File) Tensors() map[string]*tensor.Tensor {
	m := make(map[string]*tensor.Tensor, len(f.Entries))
	for name, e := range f.Entries {
		m[name] = e.Tensor()
	}
	return m
}

// layout checks an entry and returns its safetensors dtype and byte size.
func (e *Entry) layout() (DType, int64, error) {
	n := int64(1)
	for _, d := range e.Shape {
		if d < 0 {
			return "", 0, fmt.Errorf("weights: tensor %q: negative dimension in %v", e.Name, e.Shape)
		}
		n *= int64(d)
	}
	switch {
	case e.I64Data != nil && e.F32Data == nil:
		if int64(len(e.I64Data)) != n {
			return "", 0, fmt.Errorf("weights: tensor %q: %d values for shape %v", e.Name, len(e.I64Data), e.Shape)
		}
		return I64, 8 * n, nil
	case e.I64Data == nil && (e.F32Data != nil || n == 0):
		if int64(len(e.F32Data)) != n {
			return "", 0, fmt.Errorf("weights: tensor %q: %d values for shape %v", e.Name, len(e.F32Data), e.Shape)
		}
		return F32, 4 * n, nil
	}
	return "", 0, fmt.Errorf("weights: tensor %q must hold exactly one of F32Data and I64Data", e.Name)
}

// WriteSafetensors writes f to w in the safetensors format: tensors in
// f.Names order with contiguous offsets, the JSON header padded with spaces
// to a multiple of 8 bytes, f.Metadata as __metadata__. Floating-point
// entries are written as F32 and integer entries as I64, whatever their
// DType was when read.
func WriteSafetensors(w io.Writer, f *File) error {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(f.Metadata) > 0 {
		m, err := json.Marshal(f.Metadata) // keys sorted
		if err != nil {
			return fmt.Errorf("weights: metadata: %w", err)
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(m)
	}
	seen := make(map[string]bool, len(f.Names))
	var off int64
	for i, name := range f.Names {
		if name == "__metadata__" || seen[name] {
			return fmt.Errorf("weights: tensor name %q is reserved or repeated", name)
		}
		seen[name] = true
		e, ok := f.Entries[name]
		if !ok || e == nil {
			return fmt.Errorf("weights: no entry for tensor %q", name)
		}
		dt, size, err := e.layout()
		if err != nil {
			return err
		}
		if i > 0 || len(f.Metadata) > 0 {
			hdr.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		shape := e.Shape
		if shape == nil {
			shape = []int{}
		}
		s, _ := json.Marshal(shape)
		fmt.Fprintf(&hdr, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, k, dt, s, off, off+size)
		off += size
	}
	if len(f.Names) != len(f.Entries) {
		return fmt.Errorf("weights: %d names for %d entries", len(f.Names), len(f.Entries))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(hdr.Len()))
	bw.Write(n8[:])
	bw.Write(hdr.Bytes())
	var buf [8]byte
	for _, name := range f.Names {
		e := f.Entries[name]
		if e.I64Data != nil {
			for _, v := range e.I64Data {
				binary.LittleEndian.PutUint64(buf[:], uint64(v))
				bw.Write(buf[:8])
			}
			continue
		}
		for _, v := range e.F32Data {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			bw.Write(buf[:4])
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	return nil
}

// WriteSafetensorsFile writes f to path atomically: into a temporary file in
// the same directory, synced, then renamed over path, so a crash or a full
// disk never leaves a half-written file under the final name.
func WriteSafetensorsFile(path string, f *File) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := WriteSafetensors(tmp, f); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	return nil
}

// SaveSafetensorsFile writes a state dict to path atomically (FromTensors,
// then WriteSafetensorsFile).
func SaveSafetensorsFile(path string, tensors map[string]*tensor.Tensor, metadata map[string]string) error {
	f, err := FromTensors(tensors, metadata)
	if err != nil {
		return err
	}
	return WriteSafetensorsFile(path, f)
}
