package weights_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

func fileOf(t *testing.T, sd map[string]*tensor.Tensor) *weights.File {
	t.Helper()
	f, err := weights.FromTensors(sd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadStrictAndReport(t *testing.T) {
	src := fileOf(t, map[string]*tensor.Tensor{
		"a.weight":               tensor.MustFromSlice([]float32{1, 2, 3, 4}, 2, 2),
		"b.weight":               tensor.MustFromSlice([]float32{5, 6, 7}, 3),
		"bn.running_mean":        tensor.MustFromSlice([]float32{0.5}, 1),
		"bn.num_batches_tracked": tensor.MustFromSlice([]float32{4}, []int{}...),
		"extra.z":                tensor.New(1),
		"extra.y":                tensor.New(1),
	})
	newModel := func() map[string]*tensor.Tensor {
		return map[string]*tensor.Tensor{
			"a.weight":               tensor.New(2, 2),
			"b.weight":               tensor.New(1, 3), // same count, other shape
			"bn.running_mean":        tensor.New(1),
			"bn.num_batches_tracked": tensor.New(),
			"head.w":                 tensor.New(2),
			"head.b":                 tensor.New(2),
		}
	}
	cases := []struct {
		name    string
		opts    weights.LoadOptions
		wantErr []string // substrings, in order
		noErr   []string // must not appear
	}{
		{"strict", weights.LoadOptions{}, []string{"2 missing keys: head.b, head.w", "2 unexpected keys: extra.y, extra.z", "1 mis-shaped key: b.weight (model [1 3], file [3])"}, nil},
		{"allow missing", weights.LoadOptions{AllowMissing: true}, []string{"2 unexpected keys", "mis-shaped"}, []string{"missing"}},
		{"non-strict still refuses shapes", weights.LoadOptions{AllowMissing: true, AllowUnexpected: true}, []string{"1 mis-shaped key: b.weight"}, []string{"missing", "unexpected"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := newModel()
			rep, err := weights.Load(dst, src, c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			var le *weights.LoadError
			if !errors.Is(err, weights.ErrKeys) || !errors.As(err, &le) || le.Report != rep {
				t.Errorf("err %T %v does not wrap ErrKeys with the report", err, err)
			}
			msg := err.Error()
			pos := 0
			for _, w := range c.wantErr {
				i := strings.Index(msg[pos:], w)
				if i < 0 {
					t.Errorf("error %q lacks %q (in order)", msg, w)
					break
				}
				pos += i
			}
			for _, w := range c.noErr {
				if strings.Contains(msg, w) {
					t.Errorf("error %q mentions %q", msg, w)
				}
			}
			if dst["a.weight"].Data()[0] != 0 {
				t.Error("a failed load copied values")
			}
		})
	}

	// Without the mis-shaped tensor, non-strict loading succeeds and reports.
	dst := newModel()
	dst["b.weight"] = tensor.New(3)
	rep, err := weights.Load(dst, src, weights.LoadOptions{AllowMissing: true, AllowUnexpected: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rep.Missing, ","); got != "head.b,head.w" {
		t.Errorf("Missing = %s", got)
	}
	if got := strings.Join(rep.Unexpected, ","); got != "extra.y,extra.z" {
		t.Errorf("Unexpected = %s", got)
	}
	if got := strings.Join(rep.Loaded, ","); got != "a.weight,b.weight,bn.num_batches_tracked,bn.running_mean" {
		t.Errorf("Loaded = %s", got)
	}
	if dst["a.weight"].Data()[3] != 4 || dst["b.weight"].Data()[2] != 7 || dst["bn.num_batches_tracked"].Data()[0] != 4 {
		t.Errorf("values not copied: %v %v %v", dst["a.weight"], dst["b.weight"], dst["bn.num_batches_tracked"])
	}
	if !strings.Contains(rep.String(), "4 loaded") {
		t.Errorf("report %q", rep.String())
	}
}

func TestLoadEdgeCases(t *testing.T) {
	src := fileOf(t, map[string]*tensor.Tensor{
		"x.running_mean": tensor.MustFromSlice([]float32{1}, 1),
		"a.w":            tensor.MustFromSlice([]float32{1}, 1),
		"b.w":            tensor.MustFromSlice([]float32{2}, 1),
	})
	// A counter absent from an old checkpoint is set to 0, like torch.
	dst := map[string]*tensor.Tensor{"x.running_mean": tensor.New(1), "x.num_batches_tracked": tensor.MustFromSlice([]float32{9}, []int{}...), "c.w": tensor.New(1)}
	rep, err := weights.Load(dst, src, weights.LoadOptions{Keys: weights.KeyMap{{From: "a.", To: "c."}, {From: "b.", Drop: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if dst["x.num_batches_tracked"].Data()[0] != 0 || strings.Join(rep.Defaulted, ",") != "x.num_batches_tracked" || strings.Join(rep.Dropped, ",") != "b.w" || dst["c.w"].Data()[0] != 1 {
		t.Errorf("report %+v, dst %v", rep, dst)
	}
	// Two file tensors mapped onto one model tensor is an error even when
	// everything else is allowed.
	_, err = weights.Load(map[string]*tensor.Tensor{"c.w": tensor.New(1), "x.running_mean": tensor.New(1)}, src,
		weights.LoadOptions{Keys: weights.KeyMap{{From: "a.", To: "c."}, {From: "b.", To: "c."}}, AllowMissing: true, AllowUnexpected: true})
	if err == nil || !strings.Contains(err.Error(), "c.w (from a.w and b.w)") {
		t.Errorf("duplicate mapping: err = %v", err)
	}
	if _, err := weights.Load(map[string]*tensor.Tensor{"a.w": nil}, src, weights.LoadOptions{}); err == nil || !strings.Contains(err.Error(), `"a.w" is nil`) {
		t.Errorf("nil model tensor: err = %v", err)
	}
	if _, err := weights.Load(nil, nil, weights.LoadOptions{}); err == nil {
		t.Error("nil file: no error")
	}
}

// TestResNetBodyMapping loads the golden ImageNet-layout ResNet18 weights
// into a state dict named like the golden Faster R-CNN (backbone.N plus the
// head keys of frcnn_weights.safetensors) with ResNetBodyToFasterRCNN.
func TestResNetBodyMapping(t *testing.T) {
	res := golden.Load(t, "resnet18.safetensors")
	heads := golden.Load(t, "frcnn_weights.safetensors")
	// The destination names, built from torchvision's detection naming
	// (README: backbone.0 conv1, backbone.1 bn1, backbone.4-7 layer1-4).
	stage := map[string]string{"conv1": "backbone.0", "bn1": "backbone.1", "layer1": "backbone.4", "layer2": "backbone.5", "layer3": "backbone.6", "layer4": "backbone.7"}
	dst := map[string]*tensor.Tensor{}
	want := map[string]*weights.Entry{}
	for _, name := range res.Names {
		head, rest, _ := strings.Cut(name, ".")
		if head == "fc" {
			continue
		}
		d := stage[head] + "." + rest
		e := res.Entries[name]
		dst[d] = tensor.New(e.Shape...)
		want[d] = e
	}
	for _, name := range heads.Names {
		dst[name] = tensor.New(heads.Entries[name].Shape...)
	}
	if _, err := weights.Load(dst, res, weights.LoadOptions{Keys: weights.ResNetBodyToFasterRCNN}); err == nil || !strings.Contains(err.Error(), "missing keys: roi_heads.") {
		t.Errorf("strict load of a body into a detector: err = %v, want missing head keys", err)
	}
	rep, err := weights.Load(dst, res, weights.LoadOptions{Keys: weights.ResNetBodyToFasterRCNN, AllowMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Missing) != len(heads.Names) || len(rep.Loaded) != len(want) || len(rep.Dropped) != 2 || len(rep.Unexpected) != 0 {
		t.Errorf("missing %d (want %d heads), loaded %d (want %d), dropped %v, unexpected %v",
			len(rep.Missing), len(heads.Names), len(rep.Loaded), len(want), rep.Dropped, rep.Unexpected)
	}
	for d, e := range want {
		got, w := dst[d].Data(), e.Tensor().Data()
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("%s[%d] = %v, want %v", d, i, got[i], w[i])
			}
		}
	}
	if _, ok := dst["backbone.7.1.bn2.num_batches_tracked"]; !ok {
		t.Error("expected destination name missing from the test's own table")
	}
}
