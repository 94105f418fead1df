package anchor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
)

func TestGoldenAnchors(t *testing.T) {
	f := golden.Load(t, "anchors.safetensors")
	var sizes, ratios [][]float64
	if err := json.Unmarshal([]byte(f.Metadata["sizes"]), &sizes); err != nil {
		t.Fatalf("sizes metadata: %v", err)
	}
	if err := json.Unmarshal([]byte(f.Metadata["aspect_ratios"]), &ratios); err != nil {
		t.Fatalf("aspect_ratios metadata: %v", err)
	}
	if len(sizes) != 1 || len(ratios) != 1 {
		t.Fatalf("fixture has %d/%d levels; this test expects one", len(sizes), len(ratios))
	}
	g, err := New(Config{Sizes: sizes[0], AspectRatios: ratios[0]})
	if err != nil {
		t.Fatal(err)
	}
	if n := fmt.Sprint(g.NumAnchorsPerLocation()[0]); n != f.Metadata["num_anchors_per_location"] {
		t.Errorf("num anchors per location %s, want %s", n, f.Metadata["num_anchors_per_location"])
	}
	cells, _ := g.CellAnchors(0)
	golden.Check(t, "cell_anchors", box.Flatten(cells), golden.Entry(t, f, "cell_anchors").F32Data, golden.Tol{})
	for _, prefix := range []string{"", "odd."} {
		pad := golden.Entry(t, f, prefix+"padded_size").I64Data
		grid := golden.Entry(t, f, prefix+"grid_size").I64Data
		stride := golden.Entry(t, f, prefix+"stride").I64Data
		if pad[0]/grid[0] != stride[0] || pad[1]/grid[1] != stride[1] {
			t.Errorf("%sstride %v != padded %v // grid %v", prefix, stride, pad, grid)
		}
		got, err := g.Generate(int(pad[0]), int(pad[1]), [][2]int{{int(grid[0]), int(grid[1])}})
		if err != nil {
			t.Fatal(err)
		}
		want := golden.Entry(t, f, prefix+"anchors")
		golden.Check(t, prefix+"anchors", box.Flatten(got), want.F32Data, golden.Tol{})
	}
}

func TestCellAnchorsRounding(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []box.Box
	}{
		// 45/2 = 22.5 rounds to even: width 44, not 46.
		{Config{Sizes: []float64{45}, AspectRatios: []float64{1}}, []box.Box{{X1: -22, Y1: -22, X2: 22, Y2: 22}}},
		// Order a = ratio*len(sizes) + size; ratio is h/w.
		{Config{Sizes: []float64{32, 64}, AspectRatios: []float64{0.5, 2}}, []box.Box{
			{X1: -23, Y1: -11, X2: 23, Y2: 11}, {X1: -45, Y1: -23, X2: 45, Y2: 23},
			{X1: -11, Y1: -23, X2: 11, Y2: 23}, {X1: -23, Y1: -45, X2: 23, Y2: 45},
		}},
	}
	for _, tc := range tests {
		got, err := CellAnchors(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("CellAnchors(%+v) = %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

func TestGridAnchorsLayout(t *testing.T) {
	g, err := New(Config{Sizes: []float64{16}, AspectRatios: []float64{1, 2}}, Config{Sizes: []float64{64}, AspectRatios: []float64{1}})
	if err != nil {
		t.Fatal(err)
	}
	// Level 0: 2x3 map of a 64x96 image, stride 32; level 1: 1x1 map.
	got, err := g.Generate(64, 96, [][2]int{{2, 3}, {1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*3*2+1 {
		t.Fatalf("%d anchors, want 13", len(got))
	}
	// Location (y=1, x=2), anchor a=1 is row (1*3+2)*2+1 = 11.
	cells, _ := g.CellAnchors(0)
	want := box.Box{X1: 64 + cells[1].X1, Y1: 32 + cells[1].Y1, X2: 64 + cells[1].X2, Y2: 32 + cells[1].Y2}
	if got[11] != want {
		t.Errorf("anchor 11 = %v, want %v", got[11], want)
	}
	if got[12] != (box.Box{X1: -32, Y1: -32, X2: 32, Y2: 32}) {
		t.Errorf("level-1 anchor = %v", got[12])
	}
	n, _ := g.NumAnchors([][2]int{{2, 3}, {1, 1}})
	if fmt.Sprint(n) != "[12 1]" {
		t.Errorf("NumAnchors = %v", n)
	}
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
	}{
		{"no levels", func() error { _, err := New(); return err }},
		{"no sizes", func() error { _, err := New(Config{AspectRatios: []float64{1}}); return err }},
		{"zero ratio", func() error { _, err := New(Config{Sizes: []float64{32}, AspectRatios: []float64{0}}); return err }},
		{"NaN size", func() error {
			_, err := CellAnchors(Config{Sizes: []float64{nan()}, AspectRatios: []float64{1}})
			return err
		}},
		{"zero feature map", func() error {
			g, _ := New(Defaults())
			_, err := g.Generate(320, 480, [][2]int{{0, 15}})
			return err
		}},
		{"feature map larger than image", func() error {
			g, _ := New(Defaults())
			_, err := g.Generate(10, 10, [][2]int{{20, 20}})
			return err
		}},
		{"level count mismatch", func() error {
			g, _ := New(Defaults())
			_, err := g.Generate(320, 480, nil)
			return err
		}},
		{"bad level", func() error {
			g, _ := New(Defaults())
			_, err := g.CellAnchors(3)
			return err
		}},
	}
	for _, tc := range tests {
		if err := tc.run(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: error %v, want ErrConfig", tc.name, err)
		}
	}
}

func nan() float64 { var z float64; return z / z }

func BenchmarkGenerate640x480(b *testing.B) {
	g, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	// A 640x480 image padded to 640x480 (multiples of 32); stride-32 map 20x15.
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Generate(480, 640, [][2]int{{15, 20}}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGenerateInto checks that GenerateInto returns Generate's anchors
// whether dst is nil, too small, exactly the size or larger and dirty,
// reuses dst's memory when it can (then allocating nothing) and rejects
// what Generate rejects.
func TestGenerateInto(t *testing.T) {
	g, err := New(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	feats := [][2]int{{15, 20}}
	want, err := g.Generate(480, 640, feats)
	if err != nil {
		t.Fatal(err)
	}
	dirty := func(n int) []box.Box {
		d := make([]box.Box, n)
		for i := range d {
			d[i] = box.Box{X1: -7, Y1: -7, X2: -7, Y2: -7}
		}
		return d
	}
	tests := []struct {
		name  string
		dst   []box.Box
		reuse bool
	}{
		{"nil", nil, false},
		{"too small", dirty(len(want) - 1), false},
		{"exact", dirty(len(want)), true},
		{"larger, short length", dirty(len(want) + 50)[:3], true},
	}
	for _, tc := range tests {
		got, err := g.GenerateInto(tc.dst, 480, 640, feats)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: anchors differ from Generate's", tc.name)
		}
		if reused := cap(tc.dst) > 0 && &got[0] == &tc.dst[:1][0]; reused != tc.reuse {
			t.Errorf("%s: reused dst = %v, want %v", tc.name, reused, tc.reuse)
		}
	}
	buf := make([]box.Box, len(want))
	if n := testing.AllocsPerRun(20, func() { buf, _ = g.GenerateInto(buf, 480, 640, feats) }); n != 0 {
		t.Errorf("GenerateInto into a large enough slice: %v allocations, want 0", n)
	}
	if _, err := g.GenerateInto(buf, 480, 640, [][2]int{{15, 20}, {1, 1}}); !errors.Is(err, ErrConfig) {
		t.Errorf("two feature sizes for one level: err = %v, want ErrConfig", err)
	}
	if _, err := g.GenerateInto(buf, 10, 10, feats); !errors.Is(err, ErrConfig) {
		t.Errorf("feature map larger than the image: err = %v, want ErrConfig", err)
	}
}

// BenchmarkGenerateInto640x480 is BenchmarkGenerate640x480 reusing its
// result's memory: the generation alone, without a fresh 72 KiB per call.
func BenchmarkGenerateInto640x480(b *testing.B) {
	g, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	var buf []box.Box
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = g.GenerateInto(buf, 480, 640, [][2]int{{15, 20}}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGridMatchesNaiveShift checks the one-pass row writer against the
// definition, anchor (y*featW+x)*A+a = cell[a] + (x*sx, y*sy, x*sx, y*sy)
// as one float32 addition per coordinate, bit for bit, for cell counts
// below and above the writer's 64-anchor stack template and odd strides.
func TestGridMatchesNaiveShift(t *testing.T) {
	many := Config{AspectRatios: []float64{0.25, 0.5, 0.7, 1, 1.3, 2, 3, 4}}
	for s := 0; s < 9; s++ {
		many.Sizes = append(many.Sizes, 12.5*float64(s+1))
	}
	tests := []struct {
		name                     string
		c                        Config
		padH, padW, featH, featW int
	}{
		{"defaults 640x480", Defaults(), 480, 640, 15, 20},
		{"odd sizes", Config{Sizes: []float64{0.3, 7, 33}, AspectRatios: []float64{0.1, 3}}, 333, 500, 11, 16},
		{"72 cells", many, 96, 160, 7, 9},
	}
	for _, tc := range tests {
		g, err := New(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Generate(tc.padH, tc.padW, [][2]int{{tc.featH, tc.featW}})
		if err != nil {
			t.Fatal(err)
		}
		cells, _ := g.CellAnchors(0)
		sy, sx := tc.padH/tc.featH, tc.padW/tc.featW
		i := 0
		for y := 0; y < tc.featH; y++ {
			for x := 0; x < tc.featW; x++ {
				ox, oy := float32(x*sx), float32(y*sy)
				for _, c := range cells {
					want := box.Box{X1: ox + c.X1, Y1: oy + c.Y1, X2: ox + c.X2, Y2: oy + c.Y2}
					if g := got[i]; math.Float32bits(g.X1) != math.Float32bits(want.X1) || math.Float32bits(g.Y1) != math.Float32bits(want.Y1) ||
						math.Float32bits(g.X2) != math.Float32bits(want.X2) || math.Float32bits(g.Y2) != math.Float32bits(want.Y2) {
						t.Fatalf("%s: anchor %d = %v, want %v", tc.name, i, g, want)
					}
					i++
				}
			}
		}
	}
}
