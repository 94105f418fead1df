package weights_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/weights"
)

// TestPthMatchesSafetensors reads the torch.save file of the golden Faster
// R-CNN weights and requires every tensor to equal the safetensors copy
// bit for bit, in the same order.
func TestPthMatchesSafetensors(t *testing.T) {
	want := golden.Load(t, "frcnn_weights.safetensors")
	got, err := weights.ReadPthFile(golden.Path(t, "frcnn_weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Names, ",") != strings.Join(want.Names, ",") {
		t.Fatalf("names\n got %v\nwant %v", got.Names, want.Names)
	}
	for _, name := range want.Names {
		g, w := got.Entries[name], want.Entries[name]
		if !slices.Equal(g.Shape, w.Shape) || g.DType != w.DType {
			t.Errorf("%s: %s%v, want %s%v", name, g.DType, g.Shape, w.DType, w.Shape)
			continue
		}
		if len(g.F32Data) != len(w.F32Data) || len(g.I64Data) != len(w.I64Data) {
			t.Errorf("%s: lengths differ", name)
			continue
		}
		for i := range w.F32Data {
			if g.F32Data[i] != w.F32Data[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, g.F32Data[i], w.F32Data[i])
				break
			}
		}
		for i := range w.I64Data {
			if g.I64Data[i] != w.I64Data[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, g.I64Data[i], w.I64Data[i])
				break
			}
		}
	}
}

type expectedFixture struct {
	Names   []string
	Tensors map[string]struct {
		DType  string
		Shape  []int
		Values []float64
	}
}

var fixtureDTypes = map[string]weights.DType{
	"float32": weights.F32, "float16": weights.F16, "bfloat16": weights.BF16, "float64": weights.F64,
	"int64": weights.I64, "int32": weights.I32, "bool": weights.BOOL,
}

// TestPthFixtures checks non-contiguous views (transposed, sliced with an
// offset, permuted, expanded with stride 0, two views of one storage),
// half/bfloat16/double/int/bool storages, scalars and empty tensors, in the
// zip and the legacy formats, against values torch printed (expected.json,
// written by testdata/gen_pth.py).
func TestPthFixtures(t *testing.T) {
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var exp expectedFixture
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"mixed.pth", "mixed_legacy.pth"} {
		t.Run(file, func(t *testing.T) {
			f, err := weights.ReadPthFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(f.Names, ",") != strings.Join(exp.Names, ",") {
				t.Fatalf("names %v, want %v", f.Names, exp.Names)
			}
			for _, name := range exp.Names {
				w := exp.Tensors[name]
				e := f.Entries[name]
				if !slices.Equal(e.Shape, w.Shape) {
					t.Errorf("%s: shape %v, want %v", name, e.Shape, w.Shape)
					continue
				}
				if e.DType != fixtureDTypes[w.DType] {
					t.Errorf("%s: dtype %s, want %s", name, e.DType, w.DType)
				}
				var got []float64
				for _, v := range e.F32Data {
					got = append(got, float64(v))
				}
				for _, v := range e.I64Data {
					got = append(got, float64(v))
				}
				if len(got) != len(w.Values) {
					t.Errorf("%s: %d values, want %d", name, len(got), len(w.Values))
					continue
				}
				for i := range got {
					if float32(got[i]) != float32(w.Values[i]) {
						t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w.Values[i])
						break
					}
				}
			}
		})
	}
}

func TestPthCheckpointAndErrors(t *testing.T) {
	f, err := weights.ReadPthFile("testdata/checkpoint.pth")
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["state_dict_key"] != "model" || strings.Join(f.Names, ",") != "a.weight,bn.num_batches_tracked" {
		t.Errorf("checkpoint: names %v metadata %v", f.Names, f.Metadata)
	}
	if e := f.Entries["bn.num_batches_tracked"]; e.DType != weights.I64 || len(e.Shape) != 0 || e.I64Data[0] != 7 {
		t.Errorf("num_batches_tracked = %+v, want weights.I64 scalar 7", e)
	}
	cases := []struct {
		name, file, want string
	}{
		{"pickled module", "testdata/module.pth", "pickled torch.nn.modules.linear.Linear object"},
		{"safetensors given to the pth reader", "testdata/roundtrip-not-there", "no such file"},
	}
	for _, c := range cases {
		_, err := weights.ReadPthFile(c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := weights.ParsePth([]byte("{\"a\": 1}")); !errors.Is(err, weights.ErrFormat) {
		t.Errorf("JSON as pth: err = %v, want weights.ErrFormat", err)
	}
}

func TestReadFileDetectsFormat(t *testing.T) {
	for _, p := range []string{"testdata/mixed.pth", "testdata/mixed_legacy.pth", golden.Path(t, "anchors.safetensors")} {
		f, err := weights.ReadFile(p)
		if err != nil || len(f.Names) == 0 {
			t.Errorf("ReadFile(%s): %d names, %v", p, len(f.Names), err)
		}
	}
}

// TestPthModuleStateDict reads a real module's state_dict, whose
// OrderedDict carries _metadata set by a BUILD opcode.
func TestPthModuleStateDict(t *testing.T) {
	f, err := weights.ReadPthFile("testdata/module_state_dict.pth")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/module_state_dict.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][]float64
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(f.Names) != len(want) {
		t.Fatalf("names %v, want %d tensors", f.Names, len(want))
	}
	for name, w := range want {
		got := f.Entries[name].Tensor().Data()
		if len(got) != len(w) {
			t.Errorf("%s: %d values, want %d", name, len(got), len(w))
			continue
		}
		for i := range w {
			if got[i] != float32(w[i]) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w[i])
			}
		}
	}
	if e := f.Entries["1.num_batches_tracked"]; e == nil || e.DType != weights.I64 || e.I64Data[0] != 1 {
		t.Errorf("1.num_batches_tracked = %+v, want I64 1", e)
	}
}
