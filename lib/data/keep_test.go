package data

import (
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// TestClipSampleKeepsFlagsAligned checks that dropping a box drops its
// label and its difficult/crowd flags with it, with and without flags.
func TestClipSampleKeepsFlagsAligned(t *testing.T) {
	in := Sample{Width: 10, Height: 10,
		Boxes:  []box.Box{{X1: 1, Y1: 1, X2: 4, Y2: 4}, {X1: 12, Y1: 1, X2: 15, Y2: 4}, {X1: -2, Y1: 5, X2: 3, Y2: 12}},
		Labels: []int{1, 2, 3},
	}
	flagged := in
	flagged.Difficult, flagged.Crowd = []bool{false, true, true}, []bool{true, false, false}
	cases := []struct {
		name            string
		in              Sample
		difficult, crwd []bool
	}{
		{"no flags", in, nil, nil},
		{"flags", flagged, []bool{false, true}, []bool{true, false}},
	}
	for _, c := range cases {
		out := clipSample(c.in)
		want := []box.Box{{X1: 1, Y1: 1, X2: 4, Y2: 4}, {X1: 0, Y1: 5, X2: 3, Y2: 10}}
		if !slices.Equal(out.Boxes, want) || !slices.Equal(out.Labels, []int{1, 3}) ||
			!slices.Equal(out.Difficult, c.difficult) || !slices.Equal(out.Crowd, c.crwd) {
			t.Errorf("%s: boxes %v labels %v difficult %v crowd %v", c.name, out.Boxes, out.Labels, out.Difficult, out.Crowd)
		}
		if len(c.in.Labels) != 3 || c.in.Labels[1] != 2 {
			t.Errorf("%s: input labels changed to %v", c.name, c.in.Labels)
		}
	}
}
