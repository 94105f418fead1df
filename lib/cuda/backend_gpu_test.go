package cuda_test

// GPU parity tests: they run only where a CUDA device is present (they
// skip here, naming what is missing) and are built into the test binary
// that scripts/gpu-build carries to the GPU machine (`go test -c`; no Go
// toolchain there). Run them with -test.run GPU -test.v; the golden files
// are found through $DETLAB_GOLDEN (a -trimpath binary cannot locate
// ../shared/golden from its source path).
//
// Tolerances: single operations against nn.CPU allow float32 summation-
// order differences (cuBLAS and the reduction kernels add in another
// order than the CPU's GEMM; the kernels may fuse a*b+c): atol 2e-5 x the
// largest |value| plus 1e-6, rel-L2 1e-5. Whole networks are held to the
// golden README's tolerances, as the CPU parity tests are.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

var (
	gpuOnce sync.Once
	gpuB    *cuda.Backend
	gpuErr  error
)

// fakeEnv, set to 1, runs these tests on lib/cuda's fake device (the
// kernels in Go, managed memory simulated) instead of a GPU: it checks the
// harness and the whole-network orchestration on a machine without one.
// Set to "lazy", the fake device runs queued work only when the backend
// synchronizes, so a host access missing its synchronization fails the
// test (TestGPULazyFake runs part of the suite so in every plain test
// run).
const fakeEnv = "DETLAB_CUDA_FAKE"

// fakeMode reports whether the tests run on the fake device.
func fakeMode() bool { return os.Getenv(fakeEnv) != "" || lazyB != nil }

// lazyB, while TestGPULazyFake runs, is the lazy fake backend gpu returns.
var lazyB *cuda.Backend

// gpu returns the process's backend for device 0, skipping the test when
// there is none. On the fake device, NewBackend (and so a model's
// Config.Device "cuda:0") returns the same backend.
func gpu(t testing.TB) *cuda.Backend {
	t.Helper()
	if lazyB != nil {
		return lazyB
	}
	gpuOnce.Do(func() {
		switch os.Getenv(fakeEnv) {
		case "":
			gpuB, gpuErr = cuda.NewBackend(0)
		case "1", "eager":
			gpuB = cuda.NewFakeBackend(false)
			cuda.UseForNewBackend(gpuB)
		case "lazy":
			gpuB = cuda.NewFakeBackend(true)
			cuda.UseForNewBackend(gpuB)
		default:
			gpuErr = fmt.Errorf("%s=%q: want 1 (or eager) or lazy", fakeEnv, os.Getenv(fakeEnv))
		}
	})
	if gpuErr != nil {
		if errors.Is(gpuErr, cuda.ErrNoDriver) || errors.Is(gpuErr, cuda.ErrNoDevice) || errors.Is(gpuErr, cuda.ErrNoCUBLAS) {
			t.Skipf("no GPU: %v", gpuErr)
		}
		t.Fatalf("NewBackend(0): %v", gpuErr)
	}
	return gpuB
}

// needGolden fails (rather than skips, as golden.Load would) when a golden
// file is missing on a machine that has a GPU: there a skip would let the
// parity check pass unseen.
func needGolden(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(golden.Dir(), n)); err != nil {
			t.Fatalf("golden file missing on a GPU machine (set DETLAB_GOLDEN; a -trimpath binary cannot find ../shared/golden): %v", err)
		}
	}
}

func randn(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func maxAbs(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			m = math.Max(m, math.Abs(float64(v)))
		}
	}
	return m
}

// opTol is the single-operation tolerance against nn.CPU.
func opTol(want []float32) golden.Tol {
	return golden.Tol{Atol: 2e-5*maxAbs(want) + 1e-6, RelL2: 1e-5}
}

// compareNaN is golden.Compare for outputs that may hold NaN and Inf:
// those must match exactly (NaN for NaN, the same infinity), the rest be
// within tol.
func compareNaN(got, want []float32, tol golden.Tol) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	g, w := make([]float32, len(got)), make([]float32, len(want))
	for i := range got {
		gv, wv := float64(got[i]), float64(want[i])
		switch {
		case math.IsNaN(gv) || math.IsNaN(wv):
			if math.IsNaN(gv) != math.IsNaN(wv) {
				return fmt.Sprintf("element %d: got %v, want %v", i, got[i], want[i])
			}
		case math.IsInf(gv, 0) || math.IsInf(wv, 0):
			if gv != wv {
				return fmt.Sprintf("element %d: got %v, want %v", i, got[i], want[i])
			}
		default:
			g[i], w[i] = got[i], want[i]
		}
	}
	return golden.Compare(g, w, tol)
}

// gpuOp is one Backend call; buf places a slice in the memory under test.
type gpuOp struct {
	name string
	run  func(be nn.Backend, buf func([]float32) []float32) [][]float32
}

func convGeom(n, c, h, w, k, kern, s, p int) nn.ConvGeom {
	return nn.ConvGeom{N: n, C: c, H: h, W: w, K: k, KH: kern, KW: kern, SH: s, SW: s, PH: p, PW: p,
		OH: (h+2*p-kern)/s + 1, OW: (w+2*p-kern)/s + 1}
}

func gpuConvOp(geo nn.ConvGeom, seed int64) gpuOp {
	return gpuOp{name: fmt.Sprintf("conv %+v", geo), run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
		rng := rand.New(rand.NewSource(seed))
		x := buf(randn(rng, geo.N*geo.C*geo.H*geo.W))
		w := buf(randn(rng, geo.K*geo.C*geo.KH*geo.KW))
		b := buf(randn(rng, geo.K))
		out := geo.N * geo.K * geo.OH * geo.OW
		y := buf(randn(rng, out))
		be.Conv2d(geo, x, w, b, y, nn.NewArena())
		dy := buf(randn(rng, out))
		dx, dw, db := buf(randn(rng, len(x))), buf(randn(rng, len(w))), buf(randn(rng, geo.K))
		be.Conv2dBackward(geo, x, w, dy, dx, dw, db, nn.NewArena())
		return [][]float32{y, dx, dw, db}
	}}
}

func gpuGemmOp(ta, tb bool, m, n, k int, seed int64) gpuOp {
	return gpuOp{name: fmt.Sprintf("gemm ta=%v tb=%v %dx%dx%d", ta, tb, m, n, k), run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
		rng := rand.New(rand.NewSource(seed))
		a, b := buf(randn(rng, m*k+3)), buf(randn(rng, k*n+3))
		lda, ldb := k, n
		if ta {
			lda = m
		}
		if tb {
			ldb = k
		}
		c := buf(randn(rng, m*(n+2)))
		be.Gemm(ta, tb, m, n, k, 1.25, a, lda, b, ldb, 0.5, c, n+2)
		return [][]float32{c}
	}}
}

func gpuBNOp(n, c, hw int, seed int64) gpuOp {
	return gpuOp{name: fmt.Sprintf("batchnorm %dx%dx%d", n, c, hw), run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
		rng := rand.New(rand.NewSource(seed))
		xs := randn(rng, n*c*hw)
		for i := range xs {
			xs[i] = xs[i]*3 + 100 // a large mean: the two-pass variance matters
		}
		x := buf(xs)
		mean, vr := make([]float64, c), make([]float64, c)
		be.ChannelStats(x, n, c, hw, mean, vr)
		scale, shift := buf(randn(rng, c)), buf(randn(rng, c))
		y := buf(make([]float32, len(x)))
		be.ChannelAffine(x, y, n, c, hw, scale, shift, true)
		be.ChannelAffine(x, x, n, c, hw, scale, shift, false) // in place
		st := make([]float32, 0, 2*c)
		for i := range mean {
			st = append(st, float32(mean[i]-100), float32(vr[i]))
		}
		return [][]float32{st, y, x}
	}}
}

func gpuPoolOp(planes, h, w, k, s, p int, seed int64) gpuOp {
	geo := nn.PoolGeom{Planes: planes, H: h, W: w, KH: k, KW: k, SH: s, SW: s, PH: p, PW: p,
		OH: (h+2*p-k)/s + 1, OW: (w+2*p-k)/s + 1}
	return gpuOp{name: fmt.Sprintf("maxpool %+v", geo), run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
		rng := rand.New(rand.NewSource(seed))
		xs := randn(rng, planes*h*w)
		for i := 5; i < len(xs); i += 11 {
			xs[i] = xs[i-1] // ties
		}
		xs[len(xs)/3] = float32(math.NaN())
		x := buf(xs)
		out := planes * geo.OH * geo.OW
		y := buf(make([]float32, out))
		arg := make([]int32, out)
		be.MaxPool2d(geo, x, y, arg)
		dy, dx := buf(randn(rng, out)), buf(randn(rng, len(xs)))
		be.MaxPool2dBackward(geo, dy, dx, arg)
		af := make([]float32, out)
		for i, a := range arg {
			af[i] = float32(a)
		}
		return [][]float32{y, af, dx}
	}}
}

// TestGPUOpsMatchCPU runs every Backend operation on random shapes (ResNet
// and Faster R-CNN layer shapes included, and sizes past one launch's 65535
// blocks) with operands in managed memory and in Go memory (staged), and
// compares with nn.CPU.
func TestGPUOpsMatchCPU(t *testing.T) {
	b := gpu(t)
	ops := []gpuOp{
		gpuConvOp(convGeom(2, 3, 64, 80, 64, 7, 2, 3), 1),   // stem
		gpuConvOp(convGeom(2, 64, 28, 30, 64, 3, 1, 1), 2),  // layer1
		gpuConvOp(convGeom(2, 64, 28, 30, 128, 1, 2, 0), 3), // downsample
		gpuConvOp(convGeom(1, 512, 14, 15, 15, 1, 1, 0), 4), // rpn cls_logits (pointwise)
		gpuConvOp(convGeom(3, 5, 13, 11, 7, 3, 2, 1), 5),
		gpuConvOp(convGeom(1, 64, 160, 160, 8, 3, 1, 1), 6), // im2col of 14.7M elements: grid capped
		gpuGemmOp(false, false, 300, 200, 100, 7),
		gpuGemmOp(true, false, 64, 33, 1025, 8),
		gpuGemmOp(false, true, 1858, 128, 512, 9),
		gpuGemmOp(true, true, 17, 19, 23, 10),
		gpuBNOp(2, 64, 56*56, 11),
		gpuBNOp(3, 7, 5, 12),
		gpuBNOp(1, 8, 3000000, 13), // 24M elements: grid-stride beyond 65535 blocks
		gpuPoolOp(128, 112, 112, 3, 2, 1, 14),
		gpuPoolOp(3, 9, 10, 2, 2, 0, 15),
	}
	clone := func(x []float32) []float32 { return append([]float32(nil), x...) }
	managed := func(x []float32) []float32 {
		y, err := b.TryAlloc(len(x))
		if err != nil {
			t.Fatal(err)
		}
		copy(y, x)
		return y
	}
	for _, op := range ops {
		want := op.run(nn.CPU{}, clone)
		for _, mem := range []struct {
			name string
			buf  func([]float32) []float32
		}{{"go memory", clone}, {"managed", managed}} {
			got := op.run(b, mem.buf)
			syncT(t, b)
			for i := range want {
				if d := compareNaN(got[i], want[i], opTol(want[i])); d != "" {
					t.Errorf("%s [%s] output %d: %s", op.name, mem.name, i, d)
				}
			}
			if mem.name == "managed" {
				for _, o := range got {
					b.Free(o)
				}
			}
		}
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
	t.Logf("%s: %+v", b.Name(), b.Stats())
}

// TestGPUConcurrentCallers calls the backend from several goroutines at
// once: the context must be current on whatever thread each runs on.
func TestGPUConcurrentCallers(t *testing.T) {
	b := gpu(t)
	op := gpuConvOp(convGeom(2, 16, 20, 20, 8, 3, 1, 1), 21)
	clone := func(x []float32) []float32 { return append([]float32(nil), x...) }
	want := op.run(nn.CPU{}, clone)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := op.run(b, clone)
			for i := range want {
				if d := golden.Compare(got[i], want[i], opTol(want[i])); d != "" {
					errs <- d
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for d := range errs {
		t.Error(d)
	}
}

// TestGPUMemory checks managed allocation on the device: zeroed, host
// writable, counted, freed; an impossible request fails with the driver's
// out-of-memory error.
func TestGPUMemory(t *testing.T) {
	b := gpu(t)
	in0, _ := b.MemoryStats()
	x, err := b.TryAlloc(1 << 28) // 1 GiB
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1 << 20, len(x) - 1} {
		if x[i] != 0 {
			t.Fatalf("Alloc not zeroed at %d", i)
		}
	}
	x[len(x)-1] = 3
	if err := b.Prefetch(x); err != nil {
		t.Errorf("Prefetch: %v", err)
	}
	if x[len(x)-1] != 3 {
		t.Errorf("host write lost across Prefetch")
	}
	if in1, peak := b.MemoryStats(); in1-in0 != 4<<28 || peak < in1 {
		t.Errorf("MemoryStats after 1 GiB: in use %d (+%d), peak %d", in1, in1-in0, peak)
	}
	b.Free(x)
	if in2, _ := b.MemoryStats(); in2 != in0 {
		t.Errorf("in use %d after Free, want %d", in2, in0)
	}
	if _, err := b.TryAlloc(1 << 42); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_OUT_OF_MEMORY") {
		t.Errorf("16 TiB TryAlloc: %v, want CUDA_ERROR_OUT_OF_MEMORY", err)
	}
	free, total, err := b.DeviceMemory()
	if err != nil || total <= 0 || free > total {
		t.Errorf("DeviceMemory = %d, %d, %v", free, total, err)
	}
	if err := b.Synchronize(); err != nil {
		t.Error(err)
	}
	if fakeMode() {
		return
	}
	info, err := cuda.Probe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Probe: %v; device free %.1f of %.1f GiB", info, float64(free)/(1<<30), float64(total)/(1<<30))
}

func goldenResNet(t *testing.T) *resnet.ResNet18 {
	t.Helper()
	wf := golden.Load(t, "resnet18.safetensors")
	m, err := resnet.New18(golden.Entry(t, wf, "fc.weight").Shape[0], rand.New(rand.NewSource(0)))
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]*tensor.Tensor{}
	for _, k := range wf.Names {
		src[k] = wf.Entries[k].Tensor().Clone()
	}
	if err := nn.CopyState(m.StateDict(), src); err != nil {
		t.Fatal(err)
	}
	return m
}

// resnetRun runs ResNet18's eval forward and a train forward/backward on
// backend be (a nil arena: Go memory) and returns every checked tensor by
// its golden name.
func resnetRun(t *testing.T, be nn.Backend, arena *nn.Arena) map[string][]float32 {
	t.Helper()
	io := golden.Load(t, "resnet18_io.safetensors")
	x := golden.Entry(t, io, "x").Tensor()
	out := map[string][]float32{}
	keep := func(name string, v *tensor.Tensor) {
		if err := nn.Sync(be); err != nil { // the operations may still be queued
			t.Fatal(err)
		}
		out[name] = append([]float32(nil), v.Data()...)
	}

	m := goldenResNet(t)
	g := nn.NewInferenceGraph().WithBackend(be).WithArena(arena)
	f, err := m.Features(g, g.Input(x), 4)
	if err != nil {
		t.Fatal(err)
	}
	pooled, logits, err := m.Head(g, f.Layer4)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*nn.Var{"eval.stem": f.Stem, "eval.layer1": f.Layer1, "eval.layer2": f.Layer2,
		"eval.layer3": f.Layer3, "eval.layer4": f.Layer4, "eval.avgpool": pooled, "eval.logits": logits} {
		keep(name, v.Value)
	}
	g.Release()

	m = goldenResNet(t)
	m.SetTraining(true)
	g = nn.NewGraph().WithBackend(be).WithArena(arena)
	f, err = m.Features(g, g.Input(x), 4)
	if err != nil {
		t.Fatal(err)
	}
	_, logits, err = m.Head(g, f.Layer4)
	if err != nil {
		t.Fatal(err)
	}
	keep("train.layer1", f.Layer1.Value)
	keep("train.logits", logits.Value)
	prod, err := nn.Mul(g, logits, g.Input(golden.Entry(t, io, "train.g").Tensor()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, prod)); err != nil {
		t.Fatal(err)
	}
	last := m.Layers[3][1].BN2
	keep("train.bn1.running_mean", m.BN1.RunningMean)
	keep("train.bn1.running_var", m.BN1.RunningVar)
	keep("train.layer4.1.bn2.running_mean", last.RunningMean)
	keep("train.layer4.1.bn2.running_var", last.RunningVar)
	keep("train.grad.conv1.weight", m.Conv1.Weight.Grad)
	keep("train.grad.layer4.1.conv2.weight", m.Layers[3][1].Conv2.Weight.Grad)
	keep("train.grad.fc.weight", m.FC.Weight.Grad)
	g.Release()
	return out
}

// TestGPUResNet18 runs ResNet18 forward (eval) and forward/backward
// (train) on the GPU, with activations from managed memory, against the
// golden torchvision tensors (README tolerances) and against the CPU
// backend (the same tolerances: both sit within them of torchvision).
func TestGPUResNet18(t *testing.T) {
	b := gpu(t)
	needGolden(t, "resnet18.safetensors", "resnet18_io.safetensors")
	io := golden.Load(t, "resnet18_io.safetensors")
	before := b.Stats()
	got := resnetRun(t, b, nn.NewArenaWith(b.Alloc))
	if after := b.Stats(); after.Launches == before.Launches || after.GEMMs == before.GEMMs {
		t.Fatalf("the network did not run on the backend: %+v then %+v", before, after)
	}
	cpu := resnetRun(t, nn.CPU{}, nil)
	for name, tol := range golden.ResNet18IO {
		want := golden.Entry(t, io, name).F32Data
		g := got[name]
		if len(g) < len(want) {
			t.Errorf("%s: %d values, golden has %d", name, len(g), len(want))
			continue
		}
		golden.Check(t, name+" (GPU vs torchvision)", g[:len(want)], want, tol)
		golden.Check(t, name+" (GPU vs CPU)", g, cpu[name], tol)
	}
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// goldenFRCNN builds frcnn_train's model on device and loads the golden
// weights (one strict load of the head and body files).
func goldenFRCNN(t *testing.T, f *weights.File, device string) *fasterrcnn.Model {
	t.Helper()
	args := fasterrcnn.DefaultTorchvisionArgs()
	golden.Metadata(t, f, "config", &args)
	c, err := args.Config()
	if err != nil {
		t.Fatalf("golden config: %v", err)
	}
	c.Device = device
	m, err := fasterrcnn.New(c)
	if err != nil {
		t.Fatal(err)
	}
	merged := golden.FasterRCNNWeights(t)
	if _, err := m.Load(merged, weights.LoadOptions{}); err != nil {
		t.Fatalf("strict load: %v", err)
	}
	return m
}

// frcnnStep runs frcnn_train's training step on device (or, when be is
// not nil, on the CPU setting with be installed as the current backend)
// and returns the losses and the gradient rows the golden file lists.
func frcnnStep(t *testing.T, device string, be nn.Backend) (map[string]float32, map[string][]float32) {
	t.Helper()
	if be != nil {
		nn.SetBackend(be)
		defer nn.SetBackend(nil)
	}
	f := golden.Load(t, "frcnn_train.safetensors")
	ef := golden.Load(t, "frcnn_eval.safetensors")
	m := goldenFRCNN(t, f, device)
	defer m.ReleaseDevice()
	var images []*tensor.Tensor
	for i := 0; golden.Has(ef, "images."+strconv.Itoa(i)); i++ {
		images = append(images, golden.Entry(t, ef, "images."+strconv.Itoa(i)).Tensor())
	}
	targets := goldenTargets(t, f)
	m.Train()
	m.ZeroGrad()
	losses, err := m.Losses(context.Background(), images, targets)
	if err != nil {
		t.Fatal(err)
	}
	if err := losses.Backward(); err != nil {
		t.Fatal(err)
	}
	vals := losses.Values()
	sd := m.StateDict()
	grads := map[string][]float32{}
	for _, name := range f.Names {
		if !strings.HasPrefix(name, "grad.") {
			continue
		}
		p := sd.Param(strings.TrimPrefix(name, "grad."))
		if p == nil || p.Grad == nil {
			t.Fatalf("%s: no such parameter or no gradient", name)
		}
		n := len(golden.Entry(t, f, name).F32Data)
		grads[name] = append([]float32(nil), p.Grad.Data()[:n]...)
	}
	return vals, grads
}

// TestGPUFasterRCNNTrainStep runs frcnn_train's training step (ResNet18
// body, two 448x480 images, every anchor and proposal sampled) with
// Config.Device "cuda:0" and compares losses and gradients with
// torchvision's (README tolerances; box-head gradients 10x, as in
// lib/fasterrcnn's chained golden test) and with the CPU's.
func TestGPUFasterRCNNTrainStep(t *testing.T) {
	b := gpu(t)
	needGolden(t, "frcnn_train.safetensors", "frcnn_eval.safetensors", "frcnn_weights.safetensors", "resnet18.safetensors")
	f := golden.Load(t, "frcnn_train.safetensors")
	lossTol := map[string]golden.Tol{
		"loss_objectness":  {Atol: 1e-5, RelL2: 1e-6},
		"loss_rpn_box_reg": {Atol: 1e-7, RelL2: 2e-6},
		"loss_classifier":  {Atol: 2e-6, RelL2: 2e-6},
		"loss_box_reg":     {Atol: 1e-6, RelL2: 5e-6},
		"loss_total":       {Atol: 1e-5, RelL2: 1e-6},
	}
	gradTol := map[string]golden.Tol{
		"grad.rpn.head.conv.0.0.weight":                 {Atol: 1e-7, RelL2: 1e-5},
		"grad.rpn.head.cls_logits.weight":               {Atol: 1e-6, RelL2: 5e-6},
		"grad.roi_heads.box_head.fc6.weight":            {Atol: 1e-6, RelL2: 1e-4},
		"grad.roi_heads.box_predictor.cls_score.weight": {Atol: 2e-7, RelL2: 5e-5},
		"grad.backbone.7.1.conv2.weight":                {Atol: 1e-7, RelL2: 1e-4},
	}
	var gotLoss map[string]float32
	var gotGrad map[string][]float32
	before := b.Stats()
	// On the fake device too the model opens "cuda:0" itself (NewBackend
	// returns b): parameters, gradients and activations in its managed
	// memory, as on a GPU.
	gotLoss, gotGrad = frcnnStep(t, "cuda:0", nil)
	after := b.Stats()
	if after.Launches == before.Launches || after.GEMMs == before.GEMMs {
		t.Fatalf("the model did not run on the backend: %+v then %+v", before, after)
	}
	t.Logf("%s, mode %s: one training step: %d operations' launches, %d GEMMs, %d syncs", b.Name(), b.Mode(),
		after.Launches-before.Launches, after.GEMMs-before.GEMMs, after.Syncs-before.Syncs)
	cpuLoss, cpuGrad := frcnnStep(t, "cpu", nil)
	for name, tol := range lossTol {
		key := name
		if name == "loss_total" {
			key = "loss" // Losses.Values' name for the sum
		}
		g, ok := gotLoss[key]
		if !ok {
			t.Errorf("%s: not among the losses %v", name, gotLoss)
			continue
		}
		c := cpuLoss[key]
		golden.Check(t, name+" (GPU vs torchvision)", []float32{g}, golden.Entry(t, f, name).F32Data, tol)
		golden.Check(t, name+" (GPU vs CPU)", []float32{g}, []float32{c}, tol)
	}
	for name, g := range gotGrad {
		tol, ok := gradTol[name]
		if !ok {
			tol = golden.Tol{Atol: 1e-6, RelL2: 1e-4}
		}
		if strings.HasPrefix(name, "grad.roi_heads.") {
			tol.Atol *= 10
			tol.RelL2 *= 10
		}
		golden.Check(t, name+" (GPU vs torchvision)", g, golden.Entry(t, f, name).F32Data, tol)
		golden.Check(t, name+" (GPU vs CPU)", g, cpuGrad[name], tol)
	}
}

// syncT waits for be's queued operations before the test reads their
// results (they may still be queued: Backend.Sync).
func syncT(t testing.TB, be nn.Backend) {
	t.Helper()
	if err := nn.Sync(be); err != nil {
		t.Fatal(err)
	}
}

// goldenTargets returns frcnn_train's ground truth (gt.boxes.i,
// gt.labels.i) as the model's targets.
func goldenTargets(t *testing.T, f *weights.File) []fasterrcnn.Target {
	t.Helper()
	var targets []fasterrcnn.Target
	for i := 0; golden.Has(f, "gt.boxes."+strconv.Itoa(i)); i++ {
		s := strconv.Itoa(i)
		bx, err := box.FromTensor(golden.Entry(t, f, "gt.boxes."+s).Tensor())
		if err != nil {
			t.Fatal(err)
		}
		var l []int
		for _, v := range golden.Entry(t, f, "gt.labels."+s).I64Data {
			l = append(l, int(v))
		}
		targets = append(targets, fasterrcnn.Target{Boxes: bx, Labels: l})
	}
	return targets
}
