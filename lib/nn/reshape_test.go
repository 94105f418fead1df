package nn

import (
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// TestReshapedMatchesTensorReshape checks the graph's stack-resolved
// reshape against tensor.Reshape: the same shape for every valid request,
// an error for every invalid one, on graphs with and without an arena.
func TestReshapedMatchesTensorReshape(t *testing.T) {
	for _, tc := range []struct {
		in, shape []int
	}{
		{[]int{2, 3, 4}, []int{-1, 1}},
		{[]int{2, 3, 4}, []int{6, 4}},
		{[]int{2, 3, 4}, []int{4, -1}},
		{[]int{2, 3, 4}, []int{24}},
		{[]int{2, 3, 4}, []int{1, 1, 1, 1, 1, 1, 24}}, // more than six dimensions
		{[]int{2, 3, 4}, []int{5, -1}},                // does not divide
		{[]int{2, 3, 4}, []int{-1, -1}},               // two inferred
		{[]int{2, 3, 4}, []int{0, -1}},                // nothing to infer from
		{[]int{2, 3, 4}, []int{-2, 12}},               // negative
		{[]int{2, 3, 4}, []int{5, 5}},                 // wrong size
		{[]int{0, 3}, []int{0, 7}},                    // empty
		{[]int{0, 3}, []int{-1, 3}},                   // empty, inferred
	} {
		x := tensor.New(tc.in...)
		want, wantErr := x.Reshape(tc.shape...)
		for _, arena := range []bool{false, true} {
			g := NewGraph()
			if arena {
				g.WithArena(NewArena())
			}
			got, err := g.reshaped(x, tc.shape)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%v to %v (arena %v): error %v, tensor.Reshape's %v", tc.in, tc.shape, arena, err, wantErr)
			}
			if err != nil {
				continue
			}
			if !tensor.SameShape(got.Shape(), want.Shape()) || got.Len() != x.Len() {
				t.Errorf("%v to %v (arena %v): shape %v, want %v", tc.in, tc.shape, arena, got.Shape(), want.Shape())
			}
			if x.Len() > 0 && &got.Data()[0] != &x.Data()[0] {
				t.Errorf("%v to %v (arena %v): not a view of the input", tc.in, tc.shape, arena)
			}
		}
	}
}
