package weights_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func smallSafetensors(t testing.TB) []byte {
	t.Helper()
	f, err := weights.FromTensors(map[string]*tensor.Tensor{
		"w":                      tensor.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"bn.num_batches_tracked": tensor.MustFromSlice([]float32{3}, []int{}...),
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := weights.WriteSafetensors(&buf, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rezip rebuilds a torch zip with data.pkl replaced (CRCs recomputed), so
// corrupt pickles reach the pickle reader rather than the zip checksum.
func rezip(t testing.TB, b []byte, pkl []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f.Name) == "data.pkl" {
			w.Write(pkl)
			continue
		}
		rc, _ := f.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	zw.Close()
	return out.Bytes()
}

func dataPkl(t testing.TB, b []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if filepath.Base(f.Name) == "data.pkl" {
			rc, _ := f.Open()
			p, _ := io.ReadAll(rc)
			return p
		}
	}
	t.Fatal("no data.pkl")
	return nil
}

// parse runs a parser, turning a panic into a test failure.
func parse(t *testing.T, what string, fn func([]byte) (*weights.File, error), b []byte) (f *weights.File, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: panic: %v", what, r)
		}
	}()
	f, err = fn(b)
	if err != nil && !errors.Is(err, weights.ErrFormat) {
		t.Errorf("%s: error %v does not wrap ErrFormat", what, err)
	}
	return f, err
}

// TestCorruptFiles truncates and flips bytes of every format: truncation
// must always be an error, a flip an error or a successful read, never a
// panic.
func TestCorruptFiles(t *testing.T) {
	pth := readTestdata(t, "mixed.pth")
	legacy := readTestdata(t, "mixed_legacy.pth")
	st := smallSafetensors(t)
	pkl := dataPkl(t, pth)
	inputs := []struct {
		name string
		b    []byte
		fn   func([]byte) (*weights.File, error)
	}{
		{"zip pth", pth, weights.ParsePth},
		{"legacy pth", legacy, weights.ParsePth},
		{"safetensors", st, weights.ParseSafetensors},
		{"data.pkl", pkl, func(p []byte) (*weights.File, error) { return weights.ParsePth(rezip(t, pth, p)) }},
	}
	for _, in := range inputs {
		if _, err := parse(t, in.name, in.fn, in.b); err != nil {
			t.Fatalf("%s: intact input fails: %v", in.name, err)
		}
		for _, cut := range []int{0, 1, 7, 8, 9, 20, len(in.b) / 3, len(in.b) / 2, len(in.b) - 9, len(in.b) - 1} {
			if cut < 0 || cut >= len(in.b) {
				continue
			}
			if _, err := parse(t, fmt.Sprintf("%s cut at %d", in.name, cut), in.fn, in.b[:cut]); err == nil {
				t.Errorf("%s truncated to %d bytes: no error", in.name, cut)
			}
		}
		for i := 0; i < len(in.b); i += 1 + len(in.b)/97 {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				c := append([]byte(nil), in.b...)
				c[i] ^= mask
				parse(t, fmt.Sprintf("%s byte %d ^ %#x", in.name, i, mask), in.fn, c)
			}
		}
	}
}

// TestCorruptGolden truncates and flips the large golden files at a few
// offsets each.
func TestCorruptGolden(t *testing.T) {
	for _, name := range []string{"frcnn_weights.pth", "frcnn_weights.safetensors"} {
		b, err := os.ReadFile(golden.Path(t, name))
		if err != nil {
			t.Fatal(err)
		}
		fn := weights.ParseSafetensors
		if filepath.Ext(name) == ".pth" {
			fn = weights.ParsePth
		}
		n := len(b)
		for _, cut := range []int{3, 64, 1000, n / 2, n - 100, n - 1} {
			if _, err := parse(t, fmt.Sprintf("%s cut at %d", name, cut), fn, b[:cut]); err == nil {
				t.Errorf("%s truncated to %d: no error", name, cut)
			}
		}
		for _, i := range []int{0, 5, 8, 40, 300, 1500, n / 2, n - 30} {
			c := append([]byte(nil), b...)
			c[i] ^= 0x5a
			_, err := parse(t, fmt.Sprintf("%s byte %d flipped", name, i), fn, c)
			// The zip checksum catches a flip inside a record of a .pth
			// (byte 300 is in data.pkl, n/2 in a storage); flips of unused
			// header fields, and safetensors flips inside the data region,
			// may read without error.
			if filepath.Ext(name) == ".pth" && (i == 300 || i == n/2) && err == nil {
				t.Errorf("%s: flipped byte %d read without error", name, i)
			}
		}
	}
}

func TestSafetensorsHeaderErrors(t *testing.T) {
	hdr := func(json string, data int) []byte {
		b := make([]byte, 8, 8+len(json)+data)
		binary.LittleEndian.PutUint64(b, uint64(len(json)))
		b = append(b, json...)
		return append(b, make([]byte, data)...)
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"huge header length", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "{}"...), "header length"},
		{"not JSON", hdr("[1,2]", 0), "header"},
		{"bad dtype", hdr(`{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}}`, 4), "unsupported dtype"},
		{"offsets outside", hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "outside"},
		{"size mismatch", hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "bytes for shape"},
		{"overlap", hdr(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "overlapping"},
		{"trailing data", hdr(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), "cover 4 of 8"},
		{"negative dim", hdr(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "bad shape"},
		{"huge shape", hdr(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "bad shape"},
	}
	for _, c := range cases {
		_, err := weights.ParseSafetensors(c.b)
		if err == nil || !errors.Is(err, weights.ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: err = %v, want ErrFormat mentioning %q", c.name, err, c.want)
		}
	}
}

func FuzzParseSafetensors(f *testing.F) {
	f.Add(smallSafetensors(f))
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := weights.ParseSafetensors(b)
		if err != nil {
			if !errors.Is(err, weights.ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := weights.WriteSafetensors(&buf, file); err != nil {
			t.Fatalf("a file that parses does not write: %v", err)
		}
	})
}

func FuzzReadPth(f *testing.F) {
	for _, name := range []string{"mixed.pth", "mixed_legacy.pth", "checkpoint.pth", "module.pth", "module_state_dict.pth"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		_, err := weights.ParsePth(b)
		if err != nil && !errors.Is(err, weights.ErrFormat) {
			t.Errorf("error %v does not wrap ErrFormat", err)
		}
	})
}
