package cuda

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	var r registry
	for _, g := range []region{{1000, 100}, {3000, 50}, {2000, 10}} {
		if err := r.add(g.base, g.bytes); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		addr  uintptr
		bytes int
		ours  bool
		err   string
	}{
		{1000, 100, true, ""},
		{1040, 60, true, ""},
		{1099, 1, true, ""},
		{1100, 4, false, ""}, // just past the end
		{999, 4, false, ""},
		{2005, 5, true, ""},
		{2005, 6, false, "runs past the end"},
		{3049, 1, true, ""},
		{10, 4, false, ""},
		{5000, 4, false, ""},
	} {
		ours, err := r.contains(tc.addr, tc.bytes)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("contains(%d, %d): err %v, want %q", tc.addr, tc.bytes, err, tc.err)
			}
			continue
		}
		if err != nil || ours != tc.ours {
			t.Errorf("contains(%d, %d) = %v, %v; want %v", tc.addr, tc.bytes, ours, err, tc.ours)
		}
	}
	for _, g := range []region{{1050, 10}, {950, 51}, {2009, 1}, {1000, 1}} {
		if err := r.add(g.base, g.bytes); err == nil {
			t.Errorf("add(%d, %d) overlapping an allocation: no error", g.base, g.bytes)
		}
	}
	if err := r.add(950, 50); err != nil {
		t.Errorf("add(950, 50) adjacent to an allocation: %v", err)
	}
	if _, ok := r.remove(1040); ok {
		t.Error("remove of an interior address succeeded")
	}
	if n, ok := r.remove(1000); !ok || n != 100 {
		t.Errorf("remove(1000) = %d, %v", n, ok)
	}
	if ours, _ := r.contains(1040, 4); ours {
		t.Error("removed allocation still contains addresses")
	}
	if got := len(r.all()); got != 3 {
		t.Errorf("%d regions left, want 3", got)
	}
}

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{1, 256}, {256, 256}, {257, 512}, {4096, 4096}, {4097, 8192}} {
		if got := sizeClass(tc.in); got != tc.want {
			t.Errorf("sizeClass(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestDevPoolReuses(t *testing.T) {
	var p devPool
	allocs := 0
	alloc := func(n int) (uint64, error) { allocs++; return uint64(allocs * 1 << 20), nil }
	a, ca, _ := p.get(300, alloc)
	p.put(a, ca)
	b, cb, _ := p.get(500, alloc) // same class (512)
	if b != a || cb != 512 || allocs != 1 {
		t.Fatalf("pool did not reuse: %#x vs %#x, class %d, %d allocs", a, b, cb, allocs)
	}
	c, _, _ := p.get(500, alloc) // a is lent out: a new one
	if c == a || allocs != 2 || p.held != 1024 {
		t.Fatalf("second get: %#x, %d allocs, held %d", c, allocs, p.held)
	}
	p.put(b, cb)
	p.put(c, 512)
	freed := 0
	if err := p.drain(func(uint64) error { freed++; return nil }); err != nil || freed != 2 || p.held != 0 {
		t.Fatalf("drain: %v, freed %d, held %d", err, freed, p.held)
	}
}
