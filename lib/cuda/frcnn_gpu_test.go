package cuda_test

import (
	"context"
	"math"
	"strconv"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/train"
)

// goldenEvalImages returns frcnn_eval's images.
func goldenEvalImages(t *testing.T) []*tensor.Tensor {
	t.Helper()
	ef := golden.Load(t, "frcnn_eval.safetensors")
	var images []*tensor.Tensor
	for i := 0; golden.Has(ef, "images."+strconv.Itoa(i)); i++ {
		images = append(images, golden.Entry(t, ef, "images."+strconv.Itoa(i)).Tensor())
	}
	return images
}

// TestGPUFasterRCNNInference runs frcnn_eval's inference (the golden
// model in eval mode, two images of different sizes) with Config.Device
// "cuda:0" and matches every torchvision detection (same label, score
// within 5e-5, box within 5e-3 pixels: the README's end-to-end
// tolerances, as lib/fasterrcnn's golden test).
func TestGPUFasterRCNNInference(t *testing.T) {
	gpu(t)
	needGolden(t, "frcnn_train.safetensors", "frcnn_eval.safetensors", "frcnn_weights.safetensors", "resnet18.safetensors")
	ef := golden.Load(t, "frcnn_eval.safetensors")
	m := goldenFRCNN(t, golden.Load(t, "frcnn_train.safetensors"), "cuda:0")
	defer m.ReleaseDevice()
	m.Eval()
	dets, err := m.PredictTensors(context.Background(), goldenEvalImages(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range dets {
		s := strconv.Itoa(i)
		boxes := golden.Entry(t, ef, "detections.boxes."+s).F32Data
		scores := golden.Entry(t, ef, "detections.scores."+s).F32Data
		labels := golden.Entry(t, ef, "detections.labels."+s).I64Data
		if len(d.Boxes) != len(labels) {
			t.Errorf("image %d: %d detections, torchvision has %d", i, len(d.Boxes), len(labels))
			continue
		}
		used := make([]bool, len(d.Boxes))
		for k := range labels {
			found := false
			for g := range d.Boxes {
				if used[g] || int64(d.Labels[g]) != labels[k] || math.Abs(float64(d.Scores[g]-scores[k])) > 5e-5 ||
					golden.Compare(box.Flatten(d.Boxes[g:g+1]), boxes[4*k:4*k+4], golden.Tol{Atol: 5e-3}) != "" {
					continue
				}
				used[g], found = true, true
				break
			}
			if !found {
				t.Errorf("image %d: torchvision detection %d (label %d, score %v, box %v) has no match", i, k, labels[k], scores[k], boxes[4*k:4*k+4])
			}
		}
	}
}

// TestGPUFasterRCNNAMPStep runs frcnn_train's training step under
// bfloat16 autocast with loss scaling and lib/train's Scaler unscaling the
// gradients on the model's backend (Config.Device "cuda:0"), once with
// asynchronous operations and once with every operation waiting for the
// device (DETLAB_CUDA_SYNC's mode), and requires the same losses and
// gradients: on the lazy fake device a missing synchronization in the
// asynchronous run gives zeros or stale values instead.
func TestGPUFasterRCNNAMPStep(t *testing.T) {
	gpu(t)
	needGolden(t, "frcnn_train.safetensors", "frcnn_eval.safetensors", "frcnn_weights.safetensors", "resnet18.safetensors")
	f := golden.Load(t, "frcnn_train.safetensors")
	images := goldenEvalImages(t)
	targets := goldenTargets(t, f)
	step := func(syncEach bool) (map[string]float32, map[string][]float32) {
		m := goldenFRCNN(t, f, "cuda:0")
		defer m.ReleaseDevice()
		b, ok := m.Backend().(*cuda.Backend)
		if !ok {
			t.Fatalf("model backend %T, want *cuda.Backend", m.Backend())
		}
		defer cuda.SetSyncEach(b, cuda.SetSyncEach(b, syncEach))
		m.SetAutocast(nn.BFloat16)
		m.Train()
		m.ZeroGrad()
		l, err := m.Losses(context.Background(), images, targets)
		if err != nil {
			t.Fatal(err)
		}
		sc := train.NewScaler()
		sc.Backend = b
		if err := l.BackwardScaled(float32(sc.Scale)); err != nil {
			t.Fatal(err)
		}
		if finite, first := sc.Unscale(m.Params()); !finite {
			t.Fatalf("non-finite gradient in %s", first)
		}
		if err := nn.Sync(b); err != nil { // the test reads the gradients
			t.Fatal(err)
		}
		grads := map[string][]float32{}
		sd := m.StateDict()
		for _, name := range []string{"rpn.head.conv.0.0.weight", "roi_heads.box_head.fc6.weight", "backbone.7.1.conv2.weight", "backbone.0.weight"} {
			if p := sd.Param(name); p != nil && p.Grad != nil {
				grads[name] = append([]float32(nil), p.Grad.Data()...)
			}
		}
		return l.Values(), grads
	}
	gotLoss, gotGrad := step(false)
	wantLoss, wantGrad := step(true)
	for k, w := range wantLoss {
		if math.IsNaN(float64(w)) || w == 0 {
			t.Errorf("%s = %v with every operation waiting", k, w)
		}
		golden.Check(t, k+" (asynchronous vs waiting)", []float32{gotLoss[k]}, []float32{w}, golden.Tol{Atol: 1e-6, RelL2: 1e-6})
	}
	if len(wantGrad) == 0 {
		t.Fatal("no gradients to compare")
	}
	for name, w := range wantGrad {
		if maxAbs(w) == 0 {
			t.Errorf("%s: zero gradient", name)
		}
		golden.Check(t, name+" gradient (asynchronous vs waiting)", gotGrad[name], w, golden.Tol{Atol: 1e-6 * (1 + maxAbs(w)), RelL2: 1e-5})
	}
}
