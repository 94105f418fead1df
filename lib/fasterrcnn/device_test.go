package fasterrcnn

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

func TestDeviceSetting(t *testing.T) {
	for _, c := range []struct {
		device string
		ok     bool
	}{
		{"", true}, {"cpu", true}, {"CPU", true},
		{"gpu", false}, {"cuda:", false}, {"cuda:-1", false}, {"cuda:x", false}, {"cuda0", false},
	} {
		cfg := tinyConfig(t)
		cfg.Device = c.device
		err := cfg.Validate()
		if c.ok != (err == nil) {
			t.Errorf("Device %q: Validate() = %v, want ok %v", c.device, err, c.ok)
		}
		if err != nil && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Device")) {
			t.Errorf("Device %q: error %q should wrap ErrConfig and name the Device field", c.device, err)
		}
		if !c.ok {
			continue
		}
		m, err := New(cfg)
		if err != nil {
			t.Fatalf("Device %q: %v", c.device, err)
		}
		if m.Device() != "cpu" {
			t.Errorf("Device %q: model.Device() = %q, want cpu", c.device, m.Device())
		}
		if _, _, ok := m.DeviceMemory(); ok {
			t.Errorf("Device %q: DeviceMemory reports device memory for a CPU model", c.device)
		}
		if m.Backend().Name() != nn.CurrentBackend().Name() {
			t.Errorf("Device %q: Backend %q, want the current one %q", c.device, m.Backend().Name(), nn.CurrentBackend().Name())
		}
	}
	if _, _, ok := DeviceMemory("cpu"); ok {
		t.Error(`DeviceMemory("cpu") ok`)
	}
	if _, _, ok := DeviceMemory("nonsense"); ok {
		t.Error(`DeviceMemory("nonsense") ok`)
	}
}

// haveGPU reports whether lib/cuda finds a device, and why not.
func haveGPU() (bool, string) {
	info, err := cuda.Probe()
	if err != nil {
		return false, err.Error()
	}
	if len(info.Devices) == 0 {
		return false, "no CUDA device"
	}
	return true, info.String()
}

// TestDeviceUnavailable checks the error New gives for a GPU setting on a
// machine without one: it names the setting and the missing piece.
func TestDeviceUnavailable(t *testing.T) {
	if ok, info := haveGPU(); ok {
		t.Skipf("a GPU is present (%s): nothing to refuse", info)
	}
	cfg := tinyConfig(t)
	cfg.Device = "cuda:0"
	_, err := New(cfg)
	if err == nil {
		t.Fatal("New with Device cuda:0 succeeded on a machine without a GPU")
	}
	if !strings.HasPrefix(err.Error(), "fasterrcnn: Device cuda:0: cuda: ") {
		t.Errorf("error %q should start with \"fasterrcnn: Device cuda:0: cuda: \"", err)
	}
	if !errors.Is(err, cuda.ErrNoDriver) && !errors.Is(err, cuda.ErrNoDevice) && !errors.Is(err, cuda.ErrNoCUBLAS) {
		t.Errorf("error %q wraps none of cuda.ErrNoDriver, ErrNoDevice, ErrNoCUBLAS", err)
	}
	if _, _, ok := DeviceMemory("cuda:0"); ok {
		t.Error("DeviceMemory(cuda:0) ok after a failed New")
	}
}

// fakeDevice is a CPU backend whose memory is accounted like a device's:
// it lets the placement code run without a GPU.
type fakeDevice struct {
	nn.CPU
	mu          sync.Mutex
	live        map[*float32]int
	inUse, peak int64
	frees       int
}

func newFakeDevice() *fakeDevice { return &fakeDevice{live: map[*float32]int{}} }

func (d *fakeDevice) Name() string { return "fake device" }

func (d *fakeDevice) Alloc(n int) []float32 {
	b := make([]float32, max(n, 1))[:n]
	d.mu.Lock()
	defer d.mu.Unlock()
	d.live[unsafe.SliceData(b)] = n
	d.inUse += 4 * int64(n)
	d.peak = max(d.peak, d.inUse)
	return b
}

func (d *fakeDevice) Free(b []float32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := unsafe.SliceData(b)
	if n, ok := d.live[p]; ok {
		delete(d.live, p)
		d.inUse -= 4 * int64(n)
		d.frees++
	}
}

func (d *fakeDevice) owns(b []float32) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.live[unsafe.SliceData(b)]
	return ok
}

func (d *fakeDevice) MemoryStats() (inUse, peak int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inUse, d.peak
}

func deviceTestBatch() ([]*tensor.Tensor, []Target) {
	rng := rand.New(rand.NewSource(5))
	images := []*tensor.Tensor{randomImage(rng, 64, 80), randomImage(rng, 72, 64)}
	targets := []Target{
		{Boxes: []box.Box{box.New(4, 6, 40, 50)}, Labels: []int{1}},
		{Boxes: []box.Box{box.New(10, 10, 30, 60), box.New(30, 5, 60, 30)}, Labels: []int{2, 1}},
	}
	return images, targets
}

// trainStep returns the losses and a copy of every gradient of one
// training step.
func trainStep(t *testing.T, m *Model, images []*tensor.Tensor, targets []Target) (map[string]float32, map[string][]float32) {
	t.Helper()
	m.Train()
	m.SeedSampler(1)
	m.ZeroGrad()
	l, err := m.Losses(context.Background(), images, targets)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Backward(); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for _, p := range m.Params() {
		if p.Grad != nil {
			grads[p.Name] = append([]float32(nil), p.Grad.Data()...)
		}
	}
	return l.Values(), grads
}

// TestPlaceOnDevice runs the placement code against a fake device: every
// state tensor and gradient moves into the device's memory with its values,
// training gives the same numbers as before, the arena takes device memory,
// and ReleaseDevice brings everything back and frees it.
func TestPlaceOnDevice(t *testing.T) {
	images, targets := deviceTestBatch()
	ref, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, wantGrads := trainStep(t, ref, images, targets)

	m, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, k := range m.state.Keys {
		before[k] = append([]float32(nil), m.state.Tensors[k].Data()...)
	}
	dev := newFakeDevice()
	m.placeOn(dev, "fake:0")
	if m.Device() != "fake:0" || m.Backend() != nn.Backend(dev) {
		t.Fatalf("after placeOn: Device %q, Backend %q", m.Device(), m.Backend().Name())
	}
	for _, k := range m.state.Keys {
		tt := m.state.Tensors[k]
		if !dev.owns(tt.Data()) {
			t.Errorf("%s is not in device memory", k)
		}
		if golden.Compare(tt.Data(), before[k], golden.Tol{}) != "" {
			t.Errorf("%s changed value when moved", k)
		}
		if p := m.state.Param(k); p != nil && p.Grad != nil {
			t.Errorf("%s: placement gave an untouched parameter a gradient (the CPU keeps it nil)", k)
		}
	}
	inUse0, _, ok := m.DeviceMemory()
	if !ok || inUse0 <= 0 {
		t.Fatalf("DeviceMemory = %d, %v after placement", inUse0, ok)
	}
	gotLoss, gotGrads := trainStep(t, m, images, targets)
	for k, v := range wantLoss {
		if gotLoss[k] != v {
			t.Errorf("%s on the device %v, on the CPU %v", k, gotLoss[k], v)
		}
	}
	for k, g := range wantGrads {
		if d := golden.Compare(gotGrads[k], g, golden.Tol{}); d != "" {
			t.Errorf("gradient %s: %s", k, d)
		}
	}
	if len(gotGrads) != len(wantGrads) {
		t.Errorf("%d parameters have a gradient on the device, %d on the CPU", len(gotGrads), len(wantGrads))
	}
	for _, p := range m.Params() {
		if p.Grad != nil && !dev.owns(p.Grad.Data()) {
			t.Errorf("%s: gradient not in device memory", p.Name)
		}
	}
	inUse1, peak, _ := m.DeviceMemory()
	if inUse1 <= inUse0 || peak < inUse1 {
		t.Errorf("the training step took no device memory through the arena: in use %d then %d, peak %d", inUse0, inUse1, peak)
	}

	m.ReleaseDevice()
	if m.Device() != "cpu" {
		t.Errorf("Device after ReleaseDevice = %q", m.Device())
	}
	if inUse, _ := dev.MemoryStats(); inUse != 0 {
		t.Errorf("%d bytes still held on the device after ReleaseDevice", inUse)
	}
	for _, k := range m.state.Keys {
		if dev.owns(m.state.Tensors[k].Data()) {
			t.Errorf("%s still in device memory", k)
		}
	}
	again, _ := trainStep(t, m, images, targets)
	if again["loss"] != wantLoss["loss"] {
		t.Errorf("loss back on the CPU %v, want %v", again["loss"], wantLoss["loss"])
	}
	m.ReleaseDevice() // a no-op on a CPU model
}

// TestDeviceParity trains the default model (ResNet18 body) one step on
// the CPU and on GPU 0 from the same seed and batch and compares losses,
// gradients and detections. It needs a GPU and skips without one. The
// tolerances allow float32 summation-order differences (cuBLAS and the
// device kernels against the CPU GEMM), amplified through ResNet18.
func TestDeviceParity(t *testing.T) {
	if ok, why := haveGPU(); !ok {
		t.Skipf("no GPU: %s", why)
	}
	cfg := Defaults(5)
	cfg.MinSize, cfg.MaxSize = 160, 224
	cfg.Seed = 3
	cpu, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Device = "cuda:0"
	gpu, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if gpu.Device() != "cuda:0" {
		t.Fatalf("Device() = %q", gpu.Device())
	}
	t.Logf("backend: %s", gpu.Backend().Name())
	rng := rand.New(rand.NewSource(7))
	images := []*tensor.Tensor{randomImage(rng, 160, 224), randomImage(rng, 160, 200)}
	targets := []Target{
		{Boxes: []box.Box{box.New(10, 20, 90, 120), box.New(100, 30, 200, 100)}, Labels: []int{1, 2}},
		{Boxes: []box.Box{box.New(40, 40, 150, 150)}, Labels: []int{3}},
	}
	for _, prec := range []nn.Precision{nn.Float32, nn.Float16} {
		cpu.SetAutocast(prec)
		gpu.SetAutocast(prec)
		wantLoss, wantGrads := trainStep(t, cpu, images, targets)
		gotLoss, gotGrads := trainStep(t, gpu, images, targets)
		for k, v := range wantLoss {
			if d := math.Abs(float64(gotLoss[k] - v)); d > 1e-4+1e-3*math.Abs(float64(v)) {
				t.Errorf("autocast %v: %s GPU %v, CPU %v", prec, k, gotLoss[k], v)
			}
		}
		for k, g := range wantGrads {
			if d := golden.Compare(gotGrads[k], g, golden.Tol{Atol: 1e-3, RelL2: 1e-2}); d != "" {
				t.Errorf("autocast %v: gradient %s: %s", prec, k, d)
			}
		}
	}
	inUse, peak, ok := gpu.DeviceMemory()
	if !ok || inUse <= 0 || peak < inUse {
		t.Errorf("DeviceMemory = %d, %d, %v", inUse, peak, ok)
	}
	t.Logf("GPU memory in use %.1f MiB, peak %.1f MiB", float64(inUse)/(1<<20), float64(peak)/(1<<20))

	cpu.Eval()
	gpu.Eval()
	want, err := cpu.PredictTensors(context.Background(), images)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gpu.PredictTensors(context.Background(), images)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		// Random initial weights put many scores near the threshold, where
		// summation order may move a box across it.
		if d := len(got[i].Boxes) - len(want[i].Boxes); d*d > (2+len(want[i].Boxes)/10)*(2+len(want[i].Boxes)/10) {
			t.Errorf("image %d: %d detections on the GPU, %d on the CPU", i, len(got[i].Boxes), len(want[i].Boxes))
		}
	}
	gpu.ReleaseDevice()
	if inUse2, _, _ := DeviceMemory("cuda:0"); inUse2 >= inUse {
		t.Errorf("device memory in use %d after ReleaseDevice, %d before", inUse2, inUse)
	}
}

// TestPlaceOnDeviceGradients checks that placement treats gradients as the
// CPU does: a parameter no training graph touched keeps a nil gradient
// (optimisers skip it, rather than decaying it on a zero gradient); the
// first graph to touch one allocates its gradient in device memory; and a
// gradient that existed before placement moves with its values.
func TestPlaceOnDeviceGradients(t *testing.T) {
	images, _ := deviceTestBatch()
	for _, c := range []struct {
		name     string
		cpuFirst bool // one CPU training step before placement
	}{{"fresh", false}, {"trained on the CPU first", true}} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(tinyConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			before := map[string][]float32{}
			if c.cpuFirst {
				imgs, targets := deviceTestBatch()
				_, before = trainStep(t, m, imgs, targets)
			}
			dev := newFakeDevice()
			m.placeOn(dev, "fake:0")
			defer m.ReleaseDevice()
			check := func(when string, touched map[string]bool) {
				t.Helper()
				for _, p := range m.Params() {
					_, had := before[p.Name]
					switch {
					case p.Grad == nil && (had || touched[p.Name]):
						t.Errorf("%s: %s has no gradient", when, p.Name)
					case p.Grad != nil && !had && !touched[p.Name]:
						t.Errorf("%s: untouched %s has a gradient", when, p.Name)
					case p.Grad != nil && !dev.owns(p.Grad.Data()):
						t.Errorf("%s: gradient of %s is not in device memory", when, p.Name)
					}
				}
			}
			check("after placement", nil)
			for name, g := range before {
				p := m.state.Param(name)
				if d := golden.Compare(p.Grad.Data(), g, golden.Tol{}); d != "" {
					t.Errorf("gradient %s changed when moved: %s", name, d)
				}
			}
			// Inference records nothing: no gradient appears.
			m.Eval()
			if _, err := m.PredictTensors(context.Background(), images); err != nil {
				t.Fatal(err)
			}
			check("after inference", nil)
			// A training graph over the model's arena touching one
			// parameter gives that one (only) a gradient, in device memory.
			var first *nn.Param
			for _, p := range m.Params() {
				if p.Trainable && p.Grad == nil {
					first = p
					break
				}
			}
			if first == nil {
				if !c.cpuFirst {
					t.Fatal("no trainable parameter without a gradient")
				}
				return
			}
			g := nn.NewGraph().WithArena(m.arena).WithBackend(m.Backend())
			if err := g.Backward(nn.Sum(g, g.Param(first))); err != nil {
				t.Fatal(err)
			}
			g.Release()
			check("after a graph touched "+first.Name, map[string]bool{first.Name: true})
			for i, v := range first.Grad.Data() {
				if v != 1 {
					t.Fatalf("d sum / d %s[%d] = %v, want 1", first.Name, i, v)
				}
			}
		})
	}
}
