package fasterrcnn

// Device placement: Config.Device chooses the backend a model's graphs run
// on. "" or "cpu" keeps the CPU backend (nn.CurrentBackend() at each
// forward pass); "cuda" or "cuda:N" gives the model lib/cuda's backend for
// GPU N, an arena of memory the host and the GPU both address, and moves
// the parameters, buffers and gradients into such memory.

import (
	"fmt"
	"sync"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// deviceMemory is what a device backend offers beyond nn.Backend: memory
// both the host and the device address, and its accounting.
// *cuda.Backend implements it.
type deviceMemory interface {
	Alloc(n int) []float32
	Free(b []float32)
	MemoryStats() (inUse, peak int64)
}

// deviceBackend is a backend that places memory.
type deviceBackend interface {
	nn.Backend
	deviceMemory
}

// deviceState is a GPU model's placement: its device, the device's memory
// and every buffer the model took from it.
type deviceState struct {
	name string // "cuda:0"
	mem  deviceMemory
	mu   sync.Mutex
	bufs [][]float32
}

var (
	devicesMu sync.Mutex
	// devices holds one backend per CUDA ordinal for the whole process:
	// every model on a GPU shares its context, cuBLAS handle and memory
	// accounting, and re-running New in a notebook opens nothing new.
	devices = map[int]*cuda.Backend{}
)

// openDevice returns the process's backend for GPU ordinal, creating it on
// first use.
func openDevice(ordinal int) (*cuda.Backend, error) {
	devicesMu.Lock()
	defer devicesMu.Unlock()
	if b, ok := devices[ordinal]; ok {
		return b, nil
	}
	b, err := cuda.NewBackend(ordinal)
	if err != nil {
		return nil, err
	}
	devices[ordinal] = b
	return b, nil
}

// DeviceMemory reports the memory that the models of this process hold on
// a GPU ("cuda" or "cuda:N"), in bytes: in use now and the peak since the
// device was first used. ok is false for "cpu", an invalid setting, or a
// GPU no model has used yet (DeviceMemory never opens a device itself).
func DeviceMemory(device string) (inUse, peak int64, ok bool) {
	kind, ord, err := cuda.ParseDevice(device)
	if err != nil || kind != "cuda" {
		return 0, 0, false
	}
	devicesMu.Lock()
	b, ok := devices[ord]
	devicesMu.Unlock()
	if !ok {
		return 0, 0, false
	}
	inUse, peak = b.MemoryStats()
	return inUse, peak, true
}

// validateDevice checks Config.Device's form (not whether the device
// exists: New finds that out).
func validateDevice(s string) error {
	if _, _, err := cuda.ParseDevice(s); err != nil {
		return fmt.Errorf("%w: Device: %w", ErrConfig, err)
	}
	return nil
}

// useDevice gives a freshly built model the backend Config.Device names.
func (m *Model) useDevice() error {
	kind, ord, err := cuda.ParseDevice(m.cfg.Device)
	if err != nil {
		return fmt.Errorf("%w: Device: %w", ErrConfig, err)
	}
	if kind == "cpu" {
		return nil
	}
	b, err := openDevice(ord)
	if err != nil {
		return fmt.Errorf("fasterrcnn: Device %s: %w", m.cfg.Device, err)
	}
	m.placeOn(b, fmt.Sprintf("cuda:%d", ord))
	return nil
}

// placeOn makes b the model's backend: graphs take their buffers from an
// arena over b's memory, and every state tensor (parameters and buffers)
// and every gradient that exists moves into b's memory, the values copied.
// Gradients not yet allocated are allocated in b's memory by the first
// training pass that touches their parameter (nn.Graph.Param under a
// device arena). The tensors stay the same *tensor.Tensor values, so the
// parts, the state dict and optimisers built earlier see the new storage.
func (m *Model) placeOn(b deviceBackend, device string) {
	m.backend = b
	m.dev = &deviceState{name: device, mem: b}
	m.arena = nn.NewArenaWith(m.deviceAlloc)
	moved := map[*tensor.Tensor]bool{}
	move := func(t *tensor.Tensor) {
		if t == nil || moved[t] {
			return
		}
		moved[t] = true
		buf := m.deviceAlloc(t.Len())
		copy(buf, t.Data())
		*t = *tensor.MustFromSlice(buf, t.Shape()...)
	}
	for _, k := range m.state.Keys {
		move(m.state.Tensors[k])
		if p := m.state.Param(k); p != nil {
			// A nil gradient stays nil, as on the CPU: the first training
			// graph to touch the parameter allocates it from the arena's
			// allocator (m.deviceAlloc), and optimisers skip parameters no
			// graph touched instead of decaying them on a zero gradient.
			move(p.Grad)
		}
	}
}

// deviceAlloc takes n zeroed elements of device memory and records them
// for ReleaseDevice.
func (m *Model) deviceAlloc(n int) []float32 {
	d := m.dev
	b := d.mem.Alloc(n)
	d.mu.Lock()
	d.bufs = append(d.bufs, b)
	d.mu.Unlock()
	return b
}

// Device returns where the model runs: "cpu" or "cuda:N".
func (m *Model) Device() string {
	if m.dev == nil {
		return "cpu"
	}
	return m.dev.name
}

// Backend returns the backend the model's graphs run on: the device's for a
// model on a GPU, else the current nn backend.
func (m *Model) Backend() nn.Backend {
	if m.backend != nil {
		return m.backend
	}
	return nn.CurrentBackend()
}

// DeviceMemory reports the memory held on the model's GPU (by every model
// of the process on that GPU, which share one backend), in use now and at
// its peak, in bytes; ok is false on the CPU.
func (m *Model) DeviceMemory() (inUse, peak int64, ok bool) {
	if m.dev == nil {
		return 0, 0, false
	}
	inUse, peak = m.dev.mem.MemoryStats()
	return inUse, peak, true
}

// ReleaseDevice moves a GPU model back to the CPU: parameters, buffers and
// gradients are copied into Go memory, every device buffer the model took
// (its state and its arena's activations) is freed, and later passes run on
// the CPU backend. Device memory is not garbage collected, so call it
// before dropping a GPU model in a long notebook session. No Losses or
// graph of the model may be in use: their buffers are freed too. On a CPU
// model it does nothing.
func (m *Model) ReleaseDevice() {
	if m.dev == nil {
		return
	}
	// Queued operations (an optimizer step) may still write the state:
	// a failure of theirs resurfaces at the backend's next operation.
	_ = nn.Sync(m.backend)
	back := map[*tensor.Tensor]bool{}
	home := func(t *tensor.Tensor) {
		if t == nil || back[t] {
			return
		}
		back[t] = true
		*t = *tensor.MustFromSlice(append([]float32(nil), t.Data()...), t.Shape()...)
	}
	for _, k := range m.state.Keys {
		home(m.state.Tensors[k])
		if p := m.state.Param(k); p != nil {
			home(p.Grad)
		}
	}
	d := m.dev
	d.mu.Lock()
	bufs := d.bufs
	d.bufs = nil
	d.mu.Unlock()
	for _, b := range bufs {
		d.mem.Free(b)
	}
	m.backend, m.dev = nil, nil
	m.arena = nn.NewArena()
}
