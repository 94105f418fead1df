package nn

import (
	"math"
	"os"
	"slices"
	"sync"
	"unsafe"

	"github.com/detlab/detlab/lib/compute"
)

// Derived is a value computed from a parameter's tensor and kept in its
// WeightCache: GEMM panels packed once, a bfloat16 copy, Winograd-transformed
// weights, a native library's reordered buffer.
//
// The cache drops a value it replaces to the garbage collector (it may still
// be in use by a pass that fetched it earlier), so a value holding memory
// outside Go's heap must free it with runtime.AddCleanup.
type Derived interface {
	// DerivedBytes reports the memory the value holds, for accounting
	// (WeightCache.Bytes).
	DerivedBytes() int64
}

// WeightCache holds values derived from one parameter (Param.Cache), each
// under a kind chosen by its producer ("cpu/winograd4", "onednn/conv...").
// A value is returned only while it is current: built from the parameter's
// present version and storage (Param.Version; replacing Value or its data
// is noticed too) and from the same extra values, compared element by
// element (for example a BatchNorm scale folded into the weights). Otherwise
// it is rebuilt. It is safe for concurrent use.
//
// Setting the environment variable DETLAB_WEIGHT_CACHE=off makes every Get
// rebuild (a check that a result does not depend on the cache).
type WeightCache struct {
	p       *Param
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

// cacheEntry is one derived value and the state it was built from.
type cacheEntry struct {
	stamp weightStamp
	extra []float32
	val   Derived
}

// weightStamp identifies the state of a parameter's values: its version,
// its storage, and a sample of its bits (a guard against writes that did
// not call MarkChanged; it does not replace MarkChanged).
type weightStamp struct {
	version uint64
	data    unsafe.Pointer
	n       int
	sample  uint64
}

// cacheOff is DETLAB_WEIGHT_CACHE=off, read once.
var cacheOff = os.Getenv("DETLAB_WEIGHT_CACHE") == "off"

// Cache returns p's cache of derived values (created at the first call).
func (p *Param) Cache() *WeightCache {
	if c := p.cache.Load(); c != nil {
		return c
	}
	p.cache.CompareAndSwap(nil, &WeightCache{p: p, entries: map[string]*cacheEntry{}})
	return p.cache.Load()
}

// stamp returns the current state of the parameter.
func (c *WeightCache) stamp() weightStamp {
	s := weightStamp{version: c.p.Version()}
	if c.p.Value == nil {
		return s
	}
	d := c.p.Value.Data()
	s.n = len(d)
	if len(d) == 0 {
		return s
	}
	s.data = unsafe.Pointer(&d[0])
	// 61 evenly spread values (first and last included), folded into a
	// hash of their bits.
	const samples = 61
	h := uint64(14695981039346656037)
	for i := range samples {
		j := int(int64(i) * int64(len(d)-1) / (samples - 1))
		h ^= uint64(math.Float32bits(d[j]))
		h *= 1099511628211
	}
	s.sample = h
	return s
}

// Get returns the value stored under kind if it is current (built from the
// parameter's present state and from extra, element by element; extra may
// be nil), else calls build, stores its result and returns it. An error
// from build is returned and nothing is stored. The returned value must
// not be modified.
func (c *WeightCache) Get(kind string, extra []float32, build func() (Derived, error)) (Derived, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stamp()
	if e := c.entries[kind]; e != nil && !cacheOff && e.stamp == st && equalBits(e.extra, extra) {
		return e.val, nil
	}
	delete(c.entries, kind)
	v, err := build()
	if err != nil {
		return nil, err
	}
	c.entries[kind] = &cacheEntry{stamp: st, extra: slices.Clone(extra), val: v}
	return v, nil
}

// Drop forgets every cached value (their memory goes back to the garbage
// collector).
func (c *WeightCache) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

// Bytes returns the memory the cached values hold (Derived.DerivedBytes).
func (c *WeightCache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, e := range c.entries {
		n += e.val.DerivedBytes()
	}
	return n
}

// Len returns the number of cached values.
func (c *WeightCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// equalBits reports whether a and b hold the same float32 bit patterns (NaN
// equals itself; nil equals empty).
func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i, v := range a {
		if math.Float32bits(v) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// DropWeightCaches forgets the cached derived values of ps (to free memory;
// results do not depend on it).
func DropWeightCaches(ps []*Param) {
	for _, p := range ps {
		if c := p.cache.Load(); c != nil {
			c.Drop()
		}
	}
}

// bf16Weights is a convolution's weight matrix converted to bfloat16
// (compute.BF16Matrix), cached under "cpu/bf16".
type bf16Weights struct {
	m     *compute.BF16Matrix
	bytes int64
}

// DerivedBytes implements Derived.
func (w *bf16Weights) DerivedBytes() int64 { return w.bytes }

// cachedBF16 returns the convolution weights w (K x C*KH*KW) as a
// BF16Matrix: from geo.Weights while current, else converted now (the
// caller releases it when geo.Weights is nil).
func cachedBF16(geo ConvGeom, w []float32) *compute.BF16Matrix {
	ckk := geo.C * geo.KH * geo.KW
	if geo.Weights == nil {
		return compute.NewBF16Matrix(geo.K, ckk, w, ckk)
	}
	v, _ := geo.Weights.Get("cpu/bf16", nil, func() (Derived, error) {
		// Not Released when dropped: a pass may still hold it.
		return &bf16Weights{m: compute.NewBF16Matrix(geo.K, ckk, w, ckk), bytes: int64(geo.K*ckk) * 2}, nil
	})
	return v.(*bf16Weights).m
}
