package weights_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

func testStateDict() map[string]*tensor.Tensor {
	return map[string]*tensor.Tensor{
		"conv.weight":            tensor.MustFromSlice([]float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0.25}, 2, 3, 1, 1),
		"bn.running_var":         tensor.MustFromSlice([]float32{0.5, 1.5}, 2),
		"bn.num_batches_tracked": tensor.MustFromSlice([]float32{12}, []int{}...),
		"empty":                  tensor.New(0, 4),
		"scalar":                 tensor.MustFromSlice([]float32{-7.125}, []int{}...),
		"a name with \"quotes\"": tensor.MustFromSlice([]float32{9}, 1),
	}
}

// headerOrder returns the tensor names of a safetensors header in the order
// they appear in the JSON, with their offsets.
func headerOrder(t *testing.T, b []byte) (names []string, offsets [][2]int64) {
	t.Helper()
	n := binary.LittleEndian.Uint64(b)
	dec := json.NewDecoder(bytes.NewReader(b[8 : 8+n]))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, _ := dec.Token()
		var v struct {
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if k.(string) == "__metadata__" {
			continue
		}
		names = append(names, k.(string))
		offsets = append(offsets, v.DataOffsets)
	}
	return names, offsets
}

func TestWriteRoundTrip(t *testing.T) {
	sd := testStateDict()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	meta := map[string]string{"epoch": "3", "note": "ünïcode"}
	if err := weights.SaveSafetensorsFile(path, sd, meta); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Layout rules of the reference format.
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 || b[8] != '{' {
		t.Errorf("header length %d not a multiple of 8 or not JSON", n)
	}
	names, offs := headerOrder(t, b)
	var end int64
	for i, o := range offs {
		if o[0] != end {
			t.Errorf("%s: offsets %v, want to start at %d (contiguous in header order)", names[i], o, end)
		}
		end = o[1]
	}
	if int64(len(b))-8-int64(n) != end {
		t.Errorf("data region %d bytes, offsets end at %d", int64(len(b))-8-int64(n), end)
	}
	f, err := weights.ReadSafetensorsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["epoch"] != "3" || f.Metadata["note"] != "ünïcode" {
		t.Errorf("metadata %v", f.Metadata)
	}
	if strings.Join(f.Names, "|") != strings.Join(names, "|") || len(names) != len(sd) {
		t.Errorf("names %v, header %v", f.Names, names)
	}
	for name, want := range sd {
		e := f.Entries[name]
		if e == nil || !slices.Equal(e.Shape, want.Shape()) {
			t.Errorf("%s: %+v, want shape %v", name, e, want.Shape())
			continue
		}
		wantType := weights.F32
		if strings.HasSuffix(name, "num_batches_tracked") {
			wantType = weights.I64
		}
		if e.DType != wantType {
			t.Errorf("%s: dtype %s, want %s", name, e.DType, wantType)
		}
		got := e.Tensor().Data()
		for i, v := range want.Data() {
			if got[i] != v {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], v)
			}
		}
	}
	// Rewriting a read file reproduces it byte for byte.
	var buf bytes.Buffer
	if err := weights.WriteSafetensors(&buf, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), b) {
		t.Error("re-encoding a written file changed its bytes")
	}
}

// TestWriteGoldenRoundTrip rewrites a golden file written by the reference
// implementation and reads it back unchanged.
func TestWriteGoldenRoundTrip(t *testing.T) {
	src := golden.Load(t, "resnet18.safetensors")
	path := filepath.Join(t.TempDir(), "r.safetensors")
	if err := weights.WriteSafetensorsFile(path, src); err != nil {
		t.Fatal(err)
	}
	got, err := weights.ReadSafetensorsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Names, ",") != strings.Join(src.Names, ",") {
		t.Fatal("names or order changed")
	}
	for _, name := range src.Names {
		a, b := got.Entries[name], src.Entries[name]
		if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || len(a.F32Data) != len(b.F32Data) || len(a.I64Data) != len(b.I64Data) {
			t.Fatalf("%s changed: %s%v vs %s%v", name, a.DType, a.Shape, b.DType, b.Shape)
		}
		for i := range a.F32Data {
			if math.Float32bits(a.F32Data[i]) != math.Float32bits(b.F32Data[i]) {
				t.Fatalf("%s[%d] changed", name, i)
			}
		}
		for i := range a.I64Data {
			if a.I64Data[i] != b.I64Data[i] {
				t.Fatalf("%s[%d] changed", name, i)
			}
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := os.WriteFile(path, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A failing write (a nil tensor) leaves the old file and no temporary.
	bad := testStateDict()
	bad["broken"] = nil
	if err := weights.SaveSafetensorsFile(path, bad, nil); err == nil {
		t.Fatal("nil tensor: no error")
	}
	f := &weights.File{Names: []string{"x"}, Entries: map[string]*weights.Entry{"x": {Name: "x", Shape: []int{3}, F32Data: []float32{1}}}}
	if err := weights.WriteSafetensorsFile(path, f); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("short data: err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old content" {
		t.Errorf("failed write changed the file: %q", b)
	}
	if err := weights.SaveSafetensorsFile(path, testStateDict(), nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the written file", names)
	}
	if err := weights.SaveSafetensorsFile(filepath.Join(dir, "no", "such", "dir.safetensors"), testStateDict(), nil); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestFromTensorsInOrder(t *testing.T) {
	sd := map[string]*tensor.Tensor{"b": tensor.New(1), "a": tensor.New(2)}
	f, err := weights.FromTensorsInOrder([]string{"b", "a"}, sd, nil)
	if err != nil || strings.Join(f.Names, ",") != "b,a" {
		t.Fatalf("names %v, err %v", f.Names, err)
	}
	for _, names := range [][]string{{"b"}, {"b", "c"}, {"b", "b"}} {
		if _, err := weights.FromTensorsInOrder(names, sd, nil); err == nil {
			t.Errorf("names %v: no error", names)
		}
	}
}

// TestGoldenFilesParse: every reference safetensors file passes the
// reader's layout checks (contiguous offsets covering the data exactly).
func TestGoldenFilesParse(t *testing.T) {
	ms, _ := filepath.Glob(filepath.Join(golden.Dir(), "*.safetensors"))
	if len(ms) == 0 {
		t.Skip("no golden files")
	}
	for _, m := range ms {
		if _, err := weights.ReadSafetensorsFile(m); err != nil {
			t.Error(err)
		}
	}
}
