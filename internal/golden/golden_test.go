package golden

import "testing"

func TestCompare(t *testing.T) {
	tests := []struct {
		got, want []float32
		tol       Tol
		ok        bool
	}{
		{[]float32{1, 2}, []float32{1, 2}, Tol{Atol: 0}, true},
		{[]float32{1, 2.1}, []float32{1, 2}, Tol{Atol: 0.05}, false},
		{[]float32{1, 2.01}, []float32{1, 2}, Tol{Atol: 0.05, RelL2: 1e-3}, false},
		{[]float32{1, 2.01}, []float32{1, 2}, Tol{Atol: 0.05, RelL2: 1e-2}, true},
		{[]float32{1}, []float32{1, 2}, Tol{Atol: 1}, false},
	}
	for i, tc := range tests {
		if msg := Compare(tc.got, tc.want, tc.tol); (msg == "") != tc.ok {
			t.Errorf("case %d: Compare(%v, %v, %+v) = %q, want ok=%v", i, tc.got, tc.want, tc.tol, msg, tc.ok)
		}
	}
}

func TestLoadResnetIO(t *testing.T) {
	f := Load(t, "anchors.safetensors")
	e := Entry(t, f, "cell_anchors")
	if len(e.Shape) != 2 || e.Shape[1] != 4 || len(e.F32Data) != e.Shape[0]*4 {
		t.Fatalf("cell_anchors: shape %v with %d values", e.Shape, len(e.F32Data))
	}
	if len(f.Metadata) == 0 {
		t.Errorf("no metadata read")
	}
}
