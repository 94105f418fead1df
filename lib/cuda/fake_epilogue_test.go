package cuda

import (
	"errors"
	"math"
	"math/rand"
	"testing"
	"unsafe"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// fakeMemset is one memsetD32 call on the fake device.
type fakeMemset struct {
	p uint64
	v uint32
	n int
}

// memsetD32 sets n words at p to v in the fake's memory and records the
// call; f.fail["memset"] makes it fail.
func (f *fakeGPU) memsetD32(p uint64, v uint32, n int) error {
	if err := f.fail["memset"]; err != nil {
		return err
	}
	b, err := f.bytesAt(p, 4*n)
	if err != nil {
		return err
	}
	f.memsets = append(f.memsets, fakeMemset{p, v, n})
	return f.exec(func() error {
		if n > 0 {
			w := unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), n)
			for i := range w {
				w[i] = v
			}
		}
		return nil
	})
}

// The fake device's detlab_conv_epilogue, written from kernels.h: in
// place on y (N,K,HW), y = y*scale[k] + shift[k] (NULL: 1 and 0, still
// applied), then + residual when not NULL, then the ReLU when relu != 0
// (NaN passes, every other non-positive value becomes +0).
func init() {
	fakeKernels["detlab_conv_epilogue"] = func(f *fakeGPU, slots []uint64) error {
		I := func(i int) int { return int(int32(uint32(slots[i]))) }
		n, k, hw, relu := I(4), I(5), I(6), I(7) != 0
		y, err := f.f32(slots[0], n*k*hw)
		if err != nil {
			return err
		}
		scale, err := f.f32(slots[1], k)
		if err != nil {
			return err
		}
		shift, err := f.f32(slots[2], k)
		if err != nil {
			return err
		}
		res, err := f.f32(slots[3], n*k*hw)
		if err != nil {
			return err
		}
		for i := range y {
			c := i / hw % k
			s, t := float32(1), float32(0)
			if scale != nil {
				s = scale[c]
			}
			if shift != nil {
				t = shift[c]
			}
			v := float32(y[i]*s) + t
			if res != nil {
				v += res[i]
			}
			if relu && v <= 0 { // false for NaN
				v = 0
			}
			y[i] = v
		}
		return nil
	}
}

// TestZeroOnFakeDevice: Backend.Zero clears a managed slice with one
// device memset of exactly its words (and Go memory on the host, with
// none), and lib/nn's Graph.NewTensor on a graph over the backend and its
// managed arena clears through it: the tensor is zero, and the memset
// covered it (a failing memset shows NewTensor depends on it).
func TestZeroOnFakeDevice(t *testing.T) {
	f := newFakeGPU()
	f.fast = true
	b := newBackend(f, 0, "fake", false)
	defer b.Close()

	m := b.Alloc(1000)
	for i := range m {
		m[i] = float32(i) + 1
	}
	b.Zero(m[10:510])
	if len(f.memsets) != 1 || f.memsets[0] != (fakeMemset{uint64(uintptr(unsafe.Pointer(&m[10]))), 0, 500}) {
		t.Fatalf("Zero(managed[10:510]): memsets %+v, want one of 500 words at &m[10]", f.memsets)
	}
	for i, v := range m {
		if want := float32(i) + 1; (i >= 10 && i < 510 && math.Float32bits(v) != 0) || ((i < 10 || i >= 510) && v != want) {
			t.Fatalf("after Zero(m[10:510]) m[%d] = %v", i, v)
		}
	}
	g := make([]float32, 100)
	for i := range g {
		g[i] = -1
	}
	b.Zero(g)
	b.Zero(nil)
	if len(f.memsets) != 1 {
		t.Errorf("Zero on Go memory or nil used the device: %+v", f.memsets)
	}
	for i, v := range g {
		if math.Float32bits(v) != 0 {
			t.Fatalf("Zero(Go memory)[%d] = %v", i, v)
		}
	}

	// Graph.NewTensor on the backend's arena: recycled buffers hold the
	// last graph's values until the device clears them.
	arena := nn.NewArenaWith(b.Alloc)
	for step := range 3 {
		before := len(f.memsets)
		gr := nn.NewGraph().WithBackend(b).WithArena(arena)
		x := gr.NewTensor(3, 5, 7)
		d := x.Data()
		if len(f.memsets) != before+1 || f.memsets[before] != (fakeMemset{uint64(uintptr(unsafe.Pointer(&d[0]))), 0, len(d)}) {
			t.Fatalf("step %d: NewTensor(3,5,7) made memsets %+v, want one of %d words at its data", step, f.memsets[before:], len(d))
		}
		for i, v := range d {
			if math.Float32bits(v) != 0 {
				t.Fatalf("step %d: NewTensor's element %d = %v", step, i, v)
			}
			d[i] = float32(step + 1) // dirty it for the next graph
		}
		gr.Release()
	}

	// Without an arena the tensors are Go memory: no device work.
	before := len(f.memsets)
	if x := nn.NewGraph().WithBackend(b).NewTensor(4, 4); len(f.memsets) != before || x.Data()[5] != 0 {
		t.Errorf("NewTensor without an arena: %d memsets, value %v", len(f.memsets)-before, x.Data()[5])
	}

	// A device failure surfaces as the backend's *OpError.
	f.fail["memset"] = errors.New("fake memset failure")
	func() {
		defer func() {
			var oe *OpError
			if r := recover(); r == nil {
				t.Error("Zero with a failing memset did not panic")
			} else if err, ok := r.(error); !ok || !errors.As(err, &oe) || oe.Op != "Zero" {
				t.Errorf("Zero with a failing memset panicked with %v, want an *OpError for Zero", r)
			}
		}()
		b.Zero(m[:4])
	}()
	delete(f.fail, "memset")

	// A slice overrunning its allocation is a caller's bug, named.
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("Zero of a slice past its allocation did not panic")
			}
		}()
		b.Zero(unsafe.Slice(&m[999], 2))
	}()
}

// TestConvBNLaunchesOneEpilogue: lib/nn's ConvBN with a frozen BatchNorm,
// a residual and a ReLU reaches the backend as Conv2dFused: the products,
// then exactly one detlab_conv_epilogue over the output (no separate
// affine, residual or ReLU kernels), in float32 and in native bfloat16.
func TestConvBNLaunchesOneEpilogue(t *testing.T) {
	for _, p := range []nn.Precision{nn.Float32, nn.BFloat16} {
		f := newFakeGPU()
		f.fast = true
		b := newBackend(f, 0, "fake", false)
		rng := rand.New(rand.NewSource(1))
		conv, err := nn.NewConv2d("conv", 4, 6, 3, 1, 1, false, rng)
		if err != nil {
			t.Fatal(err)
		}
		bn, err := nn.NewBatchNorm2d("bn", 6)
		if err != nil {
			t.Fatal(err)
		}
		bn.SetMode(nn.BNFrozen)
		g := nn.NewGraph().WithBackend(b).WithArena(nn.NewArenaWith(b.Alloc)).WithAutocast(p)
		x := g.Input(tensor.New(2, 4, 5, 5))
		res := g.Input(tensor.New(2, 6, 5, 5))
		f.launches = nil
		if _, err := nn.ConvBN(g, conv, bn, x, res, true); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, l := range f.launches {
			count[l.name]++
		}
		if count["detlab_conv_epilogue"] != 1 || count["detlab_channel_affine"]+count["detlab_add"]+count["detlab_relu"]+count["detlab_bias_add"] != 0 {
			t.Errorf("%v: ConvBN launched %v, want one detlab_conv_epilogue and no separate epilogue kernels", p, count)
		}
		g.Release()
		b.Close()
	}
}
