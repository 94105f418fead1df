package data

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	ds, _ := Shapes(ShapesConfig{N: 101, Width: 16, Height: 16, MinSize: 4, MaxSize: 8})
	parts, err := Split(ds, []float64{0.8, 0.2}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Len() != 81 || parts[1].Len() != 20 {
		t.Fatalf("sizes %d %d", parts[0].Len(), parts[1].Len())
	}
	all := append(parts[0].Indices(), parts[1].Indices()...)
	sort.Ints(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("parts do not cover 0..100 exactly once: %v", all)
		}
	}
	again, _ := Split(ds, []float64{0.8, 0.2}, 5)
	if !reflect.DeepEqual(again[1].Indices(), parts[1].Indices()) {
		t.Fatal("same seed, different split")
	}
	other, _ := Split(ds, []float64{0.8, 0.2}, 6)
	if reflect.DeepEqual(other[1].Indices(), parts[1].Indices()) {
		t.Fatal("different seeds, same split")
	}
	// A part's sample is the parent's.
	s, err := parts[1].Sample(3)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := ds.Sample(parts[1].Indices()[3]); p.ID != s.ID || !reflect.DeepEqual(parts[1].Classes(), ds.Classes()) {
		t.Fatal("subset sample differs from the parent's")
	}
	// Fractions summing below 1 leave the rest out.
	some, _ := Split(ds, []float64{0.1, 0.1}, 5)
	if some[0].Len()+some[1].Len() != 20 {
		t.Fatalf("0.1+0.1 of 101 gave %d", some[0].Len()+some[1].Len())
	}
	tests := []struct {
		fr   []float64
		want string
	}{
		{nil, "at least one"},
		{[]float64{0.5, 0}, "want > 0"},
		{[]float64{0.7, 0.4}, "sum to"},
		{[]float64{-0.1}, "want > 0"},
	}
	for _, tc := range tests {
		if _, err := Split(ds, tc.fr, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.fr, err, tc.want)
		}
	}
	if _, err := NewSubset(ds, []int{0, 101}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("NewSubset out of range: %v", err)
	}
	sub, _ := NewSubset(ds, []int{4, 2})
	if _, err := sub.Sample(2); err == nil {
		t.Error("subset index 2 of 2 accepted")
	}
}
