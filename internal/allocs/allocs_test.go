package allocs

import "testing"

var sink []byte

// TestFewest checks that a function allocating once per call is counted
// (at least once per call in the best round) and one that allocates
// nothing counts (almost) nothing.
func TestFewest(t *testing.T) {
	n, b := Fewest(3, 50, func() { sink = make([]byte, 4096) })
	if n < 50 || b < 50*4096 {
		t.Errorf("allocating: %d allocations, %d bytes in 50 calls, want at least 50 and %d", n, b, 50*4096)
	}
	x := 0
	if n, _ := Fewest(3, 50, func() { x++ }); n >= 5 {
		t.Errorf("not allocating: %d allocations in 50 calls", n)
	}
}
