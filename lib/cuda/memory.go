package cuda

import (
	"fmt"
	"math/bits"
	"slices"
	"sort"
)

// region is one allocation of the backend: [base, base+bytes).
type region struct {
	base  uintptr
	bytes int
}

// registry is the address-range table of the backend's managed
// allocations: it tells whether a slice lies in memory the GPU addresses
// (pass its pointer) or is ordinary Go memory (stage it).
type registry struct {
	regions []region // sorted by base, non-overlapping
}

// add records an allocation.
func (r *registry) add(base uintptr, bytes int) error {
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i].base >= base })
	if (i < len(r.regions) && r.regions[i].base < base+uintptr(bytes)) ||
		(i > 0 && r.regions[i-1].base+uintptr(r.regions[i-1].bytes) > base) {
		return fmt.Errorf("cuda: allocation %#x+%d overlaps one already registered", base, bytes)
	}
	r.regions = slices.Insert(r.regions, i, region{base, bytes})
	return nil
}

// remove forgets the allocation starting at base and returns its size.
func (r *registry) remove(base uintptr) (int, bool) {
	i, ok := r.index(base)
	if !ok || r.regions[i].base != base {
		return 0, false
	}
	n := r.regions[i].bytes
	r.regions = slices.Delete(r.regions, i, i+1)
	return n, true
}

// index returns the region containing addr.
func (r *registry) index(addr uintptr) (int, bool) {
	i := sort.Search(len(r.regions), func(i int) bool { return r.regions[i].base > addr }) - 1
	if i < 0 || addr >= r.regions[i].base+uintptr(r.regions[i].bytes) {
		return 0, false
	}
	return i, true
}

// contains reports whether [addr, addr+bytes) lies inside one registered
// allocation. A range that starts inside one but runs past its end is an
// error (a slice that overruns its buffer), not Go memory.
func (r *registry) contains(addr uintptr, bytes int) (bool, error) {
	i, ok := r.index(addr)
	if !ok {
		return false, nil
	}
	g := r.regions[i]
	if addr+uintptr(bytes) > g.base+uintptr(g.bytes) {
		return false, fmt.Errorf("cuda: a %d-byte slice at %#x runs past the end of its %d-byte allocation at %#x", bytes, addr, g.bytes, g.base)
	}
	return true, nil
}

// all returns the registered allocations.
func (r *registry) all() []region { return slices.Clone(r.regions) }

// sizeClass rounds a device buffer request up to a power of two of at
// least 256 bytes, so buffers are reused across slightly different sizes.
func sizeClass(bytes int) int {
	if bytes <= 256 {
		return 256
	}
	return 1 << bits.Len(uint(bytes-1))
}

// devPool keeps device-only buffers (staging copies, im2col columns) for
// reuse: get takes one of at least the asked size, put gives it back.
type devPool struct {
	free map[int][]uint64
	held int // bytes in the pool or lent out
}

// get returns a pooled buffer of class sizeClass(bytes), or allocates one
// with alloc.
func (p *devPool) get(bytes int, alloc func(int) (uint64, error)) (uint64, int, error) {
	c := sizeClass(bytes)
	if l := p.free[c]; len(l) > 0 {
		d := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		return d, c, nil
	}
	d, err := alloc(c)
	if err != nil {
		return 0, 0, err
	}
	p.held += c
	return d, c, nil
}

// put gives a buffer of class c back.
func (p *devPool) put(d uint64, c int) {
	if p.free == nil {
		p.free = map[int][]uint64{}
	}
	p.free[c] = append(p.free[c], d)
}

// drain frees every pooled buffer (lent ones are the caller's) and returns
// the first error.
func (p *devPool) drain(free func(uint64) error) error {
	var first error
	for c, l := range p.free {
		for _, d := range l {
			if err := free(d); err != nil && first == nil {
				first = err
			}
			p.held -= c
		}
	}
	p.free = nil
	return first
}
