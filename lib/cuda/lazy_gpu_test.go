package cuda_test

import (
	"os"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
)

// lazyFake returns a lazy fake backend (queued work runs only when the
// backend synchronizes) that gpu and NewBackend return until the test
// ends, or skips when the suite already runs on a fake device or a GPU is
// present (there the real device runs these tests).
func lazyFake(t *testing.T) *cuda.Backend {
	t.Helper()
	if os.Getenv(fakeEnv) != "" {
		t.Skipf("%s=%s: the whole suite runs on the fake device", fakeEnv, os.Getenv(fakeEnv))
	}
	if info, err := cuda.Probe(); err == nil && len(info.Devices) > 0 {
		t.Skip("a GPU is present: the GPU tests run on it")
	}
	b := cuda.NewFakeBackend(true)
	lazyB = b
	cuda.UseForNewBackend(b)
	t.Cleanup(func() {
		lazyB = nil
		cuda.UseForNewBackend(nil)
	})
	return b
}

// TestGPULazyFake runs the GPU tests that exercise whole networks and
// lib/nn graphs (ResNet18 and a Faster R-CNN training step against the
// CPU and the goldens, inference, autocast products, NMS, RoIAlign, graph passes) on
// a lazy fake device, in every plain `go test` run: a host read or write
// of a tensor that a queued operation still computes or reads, without
// the synchronization before it, makes them fail. (DETLAB_CUDA_FAKE=lazy
// runs the whole suite so, TestGPUFasterRCNNAMPStep's two minutes
// included.)
func TestGPULazyFake(t *testing.T) {
	b := lazyFake(t)
	if b.Mode() != "async" {
		t.Fatalf("Mode() = %q, want async", b.Mode())
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"ResNet18", TestGPUResNet18},
		{"FasterRCNNTrainStep", TestGPUFasterRCNNTrainStep},
		{"FasterRCNNInference", TestGPUFasterRCNNInference},
		{"Half", TestGPUHalf},
		{"NMS", TestGPUNMS},
		{"RoIAlign", TestGPURoIAlign},
		{"GraphBackward", TestGPUGraphBackward},
		{"Conv2dFused", TestGPUConv2dFused},
		{"Zero", TestGPUZero},
		{"BatchNormBackward", TestGPUBatchNormBackward},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestLazyFakeCatchesMissingSync removes one synchronization point, the
// first that lib/nn makes in ResNet18's eval forward (its host pooling
// reading layer4), and expects the lazy fake device to turn it into wrong
// logits; with every point in place they match the CPU's.
func TestLazyFakeCatchesMissingSync(t *testing.T) {
	b := lazyFake(t)
	io := golden.Load(t, "resnet18_io.safetensors")
	x := golden.Entry(t, io, "x").Tensor()
	logits := func(be nn.Backend, arena *nn.Arena, drop bool) []float32 {
		m := goldenResNet(t)
		g := nn.NewInferenceGraph().WithBackend(be).WithArena(arena)
		defer g.Release()
		if drop {
			cuda.DropSync(b, 1)
			defer cuda.DropSync(b, 0)
		}
		out, err := m.Forward(g, g.Input(x))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Synchronize(); err != nil { // the test's own read
			t.Fatal(err)
		}
		return append([]float32(nil), out.Value.Data()...)
	}
	want := logits(nn.CPU{}, nil, false)
	tol := golden.ResNet18IO["eval.logits"]
	if d := golden.Compare(logits(b, nn.NewArenaWith(b.Alloc), false), want, tol); d != "" {
		t.Fatalf("lazy fake, every synchronization in place: logits differ from the CPU's: %s", d)
	}
	if d := golden.Compare(logits(b, nn.NewArenaWith(b.Alloc), true), want, tol); d == "" {
		t.Fatal("lazy fake with lib/nn's first synchronization removed: logits still match the CPU's, the fake device did not catch it")
	} else {
		t.Logf("first synchronization removed: %s (caught)", d)
	}
}
