package box

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

var nan32 = float32(math.NaN())

func TestIoUCases(t *testing.T) {
	tests := []struct {
		name string
		a, b Box
		want float32
	}{
		{"identical", Box{0, 0, 10, 10}, Box{0, 0, 10, 10}, 1},
		{"disjoint", Box{0, 0, 10, 10}, Box{20, 20, 30, 30}, 0},
		{"touching", Box{0, 0, 10, 10}, Box{10, 0, 20, 10}, 0},
		{"half", Box{0, 0, 10, 10}, Box{5, 0, 15, 10}, float32(50) / 150},
		{"contained", Box{0, 0, 10, 10}, Box{2, 2, 7, 7}, 0.25},
		{"no +1", Box{0, 0, 1, 1}, Box{0, 0, 2, 1}, 0.5},
	}
	for _, tc := range tests {
		got := IoU([]Box{tc.a}, []Box{tc.b}).Data()[0]
		if got != tc.want {
			t.Errorf("%s: IoU(%v, %v) = %v, want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
		if sym := IoU([]Box{tc.b}, []Box{tc.a}).Data()[0]; sym != got {
			t.Errorf("%s: IoU not symmetric: %v vs %v", tc.name, got, sym)
		}
	}
	if s := IoU(nil, []Box{{0, 0, 1, 1}}).Shape(); !slices.Equal(s, []int{0, 1}) {
		t.Errorf("empty IoU shape %v", s)
	}
}

func TestNMSCases(t *testing.T) {
	// Box 1 overlaps box 0 with IoU exactly 0.5 (area 100 vs 50 inside).
	boxes := []Box{{0, 0, 10, 10}, {0, 0, 10, 5}, {50, 50, 60, 60}, {0, 0, 10, 10}}
	tests := []struct {
		name   string
		boxes  []Box
		scores []float32
		thresh float64
		want   []int
	}{
		{"empty", nil, nil, 0.5, []int{}},
		{"IoU equal to threshold is kept", boxes[:3], []float32{0.9, 0.8, 0.7}, 0.5, []int{0, 1, 2}},
		{"IoU above threshold is suppressed", boxes[:3], []float32{0.9, 0.8, 0.7}, 0.49, []int{0, 2}},
		{"decreasing score order", boxes[:3], []float32{0.1, 0.2, 0.3}, 0.49, []int{2, 1}},
		{"equal scores keep input order", []Box{boxes[0], boxes[3]}, []float32{0.5, 0.5}, 0.5, []int{0}},
		{"NaN score dropped", boxes[:3], []float32{nan32, 0.8, 0.7}, 0.49, []int{1, 2}},
		{"NaN box neither suppresses nor is suppressed", []Box{{nan32, 0, 10, 10}, boxes[0]}, []float32{0.9, 0.8}, 0.1, []int{0, 1}},
		{"threshold 1 keeps all", []Box{boxes[0], boxes[3]}, []float32{0.5, 0.6}, 1, []int{1, 0}},
	}
	for _, tc := range tests {
		got, err := NMS(tc.boxes, tc.scores, tc.thresh)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := NMS(boxes, []float32{1}, 0.5); !errors.Is(err, ErrInput) {
		t.Errorf("length mismatch: err %v", err)
	}
}

// TestNMSThresholdIsDouble checks that the float32 IoU is compared with the
// float64 threshold: IoU 1/3 in float32 is above float64(1/3).
func TestNMSThresholdIsDouble(t *testing.T) {
	boxes := []Box{{0, 0, 10, 10}, {5, 0, 15, 10}} // IoU float32(50/150) = 0.33333334
	got, _ := NMS(boxes, []float32{1, 0.5}, 1.0/3)
	if !slices.Equal(got, []int{0}) {
		t.Errorf("got %v: float32(1/3) > float64(1/3) should suppress", got)
	}
}

// refBatchedNMS is NMS per label done the slow, obvious way.
func refBatchedNMS(boxes []Box, scores []float32, labels []int, thresh float64) []int {
	var keep []int
	for _, l := range slices.Compact(slices.Sorted(slices.Values(labels))) {
		var idx []int
		for i := range labels {
			if labels[i] == l {
				idx = append(idx, i)
			}
		}
		sub, _ := NMS(Select(boxes, idx), pickScores(scores, idx), thresh)
		for _, k := range sub {
			keep = append(keep, idx[k])
		}
	}
	slices.SortStableFunc(keep, func(a, b int) int {
		if scores[a] > scores[b] {
			return -1
		}
		if scores[a] < scores[b] {
			return 1
		}
		return a - b
	})
	return keep
}

func pickScores(s []float32, idx []int) []float32 {
	out := make([]float32, len(idx))
	for k, i := range idx {
		out[k] = s[i]
	}
	return out
}

func randomBoxes(rng *rand.Rand, n int, span float32) ([]Box, []float32, []int) {
	boxes := make([]Box, n)
	scores := make([]float32, n)
	labels := make([]int, n)
	for i := range boxes {
		x, y := rng.Float32()*span, rng.Float32()*span
		boxes[i] = Box{x, y, x + 1 + rng.Float32()*span/4, y + 1 + rng.Float32()*span/4}
		scores[i] = rng.Float32()
		labels[i] = rng.Intn(4)
	}
	return boxes, scores, labels
}

func TestBatchedNMSBothPaths(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 30, 999, 1000, 1001, 1500} {
		boxes, scores, labels := randomBoxes(rng, n, 200)
		got, err := BatchedNMS(boxes, scores, labels, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if want := refBatchedNMS(boxes, scores, labels, 0.5); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			// The coordinate trick may flip a decision within float32 noise;
			// with random boxes at this scale it does not.
			t.Errorf("n=%d: batched %d kept, per-label reference %d", n, len(got), len(want))
		}
	}
	if _, err := BatchedNMS([]Box{{0, 0, 1, 1}}, []float32{1}, []int{-1}, 0.5); !errors.Is(err, ErrInput) {
		t.Errorf("negative label: err %v", err)
	}
	if _, err := BatchedNMS([]Box{{0, 0, 1, 1}}, []float32{1}, nil, 0.5); !errors.Is(err, ErrInput) {
		t.Errorf("missing labels: err %v", err)
	}
}

// TestAppendBatchedNMSWith checks that the appending form keeps dst's
// elements, appends BatchedNMS's result on both paths (large labels take
// the comparison sort), and allocates nothing once dst and the working
// memory have grown.
func TestAppendBatchedNMSWith(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, tc := range []struct {
		n, labelScale int
	}{{0, 1}, {30, 1}, {999, 1}, {1500, 1}, {1500, 1 << 40}} {
		boxes, scores, labels := randomBoxes(rng, tc.n, 200)
		for i := range labels {
			labels[i] *= tc.labelScale
		}
		want, err := BatchedNMS(boxes, scores, labels, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendBatchedNMSWith([]int{-7}, nil, boxes, scores, labels, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || got[0] != -7 || !slices.Equal(got[1:], want) {
			t.Errorf("n=%d labels x%d: appended %d kept after the prefix %v, want %d", tc.n, tc.labelScale, len(got)-1, got[:min(1, len(got))], len(want))
		}
		if tc.n == 0 || tc.labelScale != 1 {
			continue
		}
		dst := make([]int, 0, tc.n)
		allocs := testing.AllocsPerRun(20, func() {
			dst, err = AppendBatchedNMSWith(dst[:0], nil, boxes, scores, labels, 0.5)
		})
		// A pool emptied by a collection may cost its workspace once.
		if allocs >= 1 {
			t.Errorf("n=%d: %.1f allocations per reused call, want 0", tc.n, allocs)
		}
	}
}

func TestClipAndRemoveSmall(t *testing.T) {
	in := []Box{{-5, -5, 500, 400}, {600, 10, 700, 20}, {10, 10, 10, 20}, {nan32, 0, 1, 1}, {1, 1, 1.0005, 2}}
	got := ClipToImage(in, 320, 480)
	want := []Box{{0, 0, 480, 320}, {480, 10, 480, 20}, {10, 10, 10, 20}, {nan32, 0, 1, 1}, {1, 1, 1.0005, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("clip: got %v, want %v", got, want)
	}
	if keep := RemoveSmall(got, 1e-3); !slices.Equal(keep, []int{0}) {
		t.Errorf("remove small: got %v, want [0] (outside, zero-width, NaN and 5e-4 wide boxes go)", keep)
	}
	if keep := RemoveSmall(nil, 1e-3); len(keep) != 0 {
		t.Errorf("remove small of nothing: %v", keep)
	}
	if keep := AppendRemoveSmall([]int{9}, got, 1e-3); !slices.Equal(keep, []int{9, 0}) {
		t.Errorf("append remove small: got %v, want [9 0]", keep)
	}
	for i, b := range in {
		if c := b.Clip(320, 480); fmt.Sprint(c) != fmt.Sprint(want[i]) {
			t.Errorf("Clip(%v) = %v, want %v", b, c, want[i])
		}
	}
}

func TestCoderRoundTripAndClamp(t *testing.T) {
	c := NewCoder(10, 10, 5, 5)
	props := []Box{{10, 20, 50, 80}, {0, 0, 4, 4}}
	ref := []Box{{12, 18, 60, 70}, {1, 1, 3, 5}}
	d, err := c.Encode(ref, props)
	if err != nil {
		t.Fatal(err)
	}
	back, err := c.Decode(d, props)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ref {
		for _, e := range []float32{back[i].X1 - ref[i].X1, back[i].Y1 - ref[i].Y1, back[i].X2 - ref[i].X2, back[i].Y2 - ref[i].Y2} {
			if math.Abs(float64(e)) > 1e-4 {
				t.Errorf("round trip %d: %v, want %v", i, back[i], ref[i])
			}
		}
	}
	// dw = 100 clamps at log(1000/16): width 10 -> 10*62.5 = 625; dw = -100 is not clamped.
	one := NewCoder(1, 1, 1, 1)
	got, _ := one.Decode([]float32{0, 0, 100, -100}, []Box{{0, 0, 10, 10}})
	if w := got[0].Width(); math.Abs(float64(w)-625) > 1e-3 {
		t.Errorf("clamped width %v, want 625", w)
	}
	if h := got[0].Height(); h != 0 {
		t.Errorf("dh=-100 height %v, want 0 (exp underflow, no lower clamp)", h)
	}
	if _, err := one.Decode([]float32{1, 2, 3}, []Box{{}}); !errors.Is(err, ErrInput) {
		t.Errorf("bad delta count: %v", err)
	}
	if _, err := one.Encode([]Box{{}}, nil); !errors.Is(err, ErrInput) {
		t.Errorf("encode length mismatch: %v", err)
	}
	if out, err := one.Decode(nil, nil); err != nil || len(out) != 0 {
		t.Errorf("empty decode: %v %v", out, err)
	}
}

func TestMatcher(t *testing.T) {
	m := Matcher{High: 0.7, Low: 0.3, AllowLowQualityMatches: true}
	// 2 GTs x 5 predictions.
	q := tensor.MustFromSlice([]float32{
		0.8, 0.5, 0.1, 0.2, 0.0,
		0.1, 0.6, 0.2, 0.6, 0.0,
	}, 2, 5)
	got, err := m.Match(q)
	if err != nil {
		t.Fatal(err)
	}
	// p0 >= 0.7 -> 0; p1 best 0.6 (GT1) between, but GT1's max is 0.6 so it is
	// a low-quality match, as is p3 (exact tie); p2 below; p4 below.
	if want := []int{0, 1, BelowLowThreshold, 1, BelowLowThreshold}; !slices.Equal(got, want) {
		t.Errorf("low-quality: got %v, want %v", got, want)
	}
	m.AllowLowQualityMatches = false
	got, _ = m.Match(q)
	if want := []int{0, BetweenThresholds, BelowLowThreshold, BetweenThresholds, BelowLowThreshold}; !slices.Equal(got, want) {
		t.Errorf("no low-quality: got %v, want %v", got, want)
	}
	// Threshold 0.7 compared in float32: float32(0.7) itself is positive.
	got, _ = Matcher{High: 0.7, Low: 0.3}.Match(tensor.MustFromSlice([]float32{0.7, 0.3, 0.29999998}, 1, 3))
	if want := []int{0, BetweenThresholds, BelowLowThreshold}; !slices.Equal(got, want) {
		t.Errorf("float32 thresholds: got %v, want %v", got, want)
	}
	got, _ = Matcher{High: 0.5, Low: 0.5}.Match(tensor.MustFromSlice([]float32{nan32, 0.6}, 1, 2))
	if want := []int{BelowLowThreshold, 0}; !slices.Equal(got, want) {
		t.Errorf("NaN quality: got %v, want %v", got, want)
	}
	if _, err := m.Match(tensor.New(0, 4)); !errors.Is(err, ErrNoGroundTruth) {
		t.Errorf("no GT: %v", err)
	}
	if got, err := m.Match(tensor.New(2, 0)); err != nil || len(got) != 0 {
		t.Errorf("no predictions: %v %v", got, err)
	}
	if _, err := (Matcher{High: 0.3, Low: 0.7}).Match(q); !errors.Is(err, ErrInput) {
		t.Errorf("low > high: %v", err)
	}
}

func TestSampler(t *testing.T) {
	labels := make([]int, 100)
	for i := range labels {
		switch {
		case i%10 == 0:
			labels[i] = 2 // 10 positives
		case i%10 == 1:
			labels[i] = -1 // 10 ignored
		}
	}
	tests := []struct {
		name             string
		s                Sampler
		wantPos, wantNeg int
	}{
		{"all fit", Sampler{1000, 0.25}, 10, 80},
		{"positives capped", Sampler{16, 0.25}, 4, 12},
		{"negatives fill", Sampler{40, 0.5}, 10, 30},
		{"int truncation", Sampler{7, 0.5}, 3, 4},
		{"zero batch", Sampler{0, 0.5}, 0, 0},
	}
	for _, tc := range tests {
		pos, neg, err := tc.s.Sample(labels, rand.New(rand.NewSource(7)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(pos) != tc.wantPos || len(neg) != tc.wantNeg {
			t.Errorf("%s: %d/%d, want %d/%d", tc.name, len(pos), len(neg), tc.wantPos, tc.wantNeg)
		}
		if !slices.IsSorted(pos) || !slices.IsSorted(neg) {
			t.Errorf("%s: not ascending", tc.name)
		}
		for _, i := range pos {
			if labels[i] < 1 {
				t.Errorf("%s: positive %d has label %d", tc.name, i, labels[i])
			}
		}
		for _, i := range neg {
			if labels[i] != 0 {
				t.Errorf("%s: negative %d has label %d", tc.name, i, labels[i])
			}
		}
	}
	// Deterministic for a seed.
	a, _, _ := Sampler{16, 0.25}.Sample(labels, rand.New(rand.NewSource(3)))
	b, _, _ := Sampler{16, 0.25}.Sample(labels, rand.New(rand.NewSource(3)))
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different samples: %v vs %v", a, b)
	}
	if _, _, err := (Sampler{16, 0.25}).Sample(labels, nil); !errors.Is(err, ErrInput) {
		t.Errorf("nil rng when subsampling: %v", err)
	}
	if _, _, err := (Sampler{16, 1.5}).Sample(labels, nil); !errors.Is(err, ErrInput) {
		t.Errorf("bad fraction: %v", err)
	}
	if got := SortedUnion([]int{1, 5}, []int{0, 3, 9}); !slices.Equal(got, []int{0, 1, 3, 5, 9}) {
		t.Errorf("SortedUnion = %v", got)
	}
}

func TestConversions(t *testing.T) {
	if _, err := FromSlice([]float32{1, 2, 3}); !errors.Is(err, ErrInput) {
		t.Errorf("FromSlice of 3 values: %v", err)
	}
	if _, err := FromTensor(tensor.New(2, 3)); !errors.Is(err, ErrInput) {
		t.Errorf("FromTensor (2,3): %v", err)
	}
	if _, err := FromTensor(nil); !errors.Is(err, ErrInput) {
		t.Errorf("FromTensor nil: %v", err)
	}
	b := []Box{{1, 2, 3, 4}}
	back, err := FromTensor(ToTensor(b))
	if err != nil || back[0] != b[0] {
		t.Errorf("round trip: %v %v", back, err)
	}
	if a := (Box{0, 0, 2, 3}).Area(); a != 6 {
		t.Errorf("area %v", a)
	}
}

// FuzzNMS checks NMS invariants on arbitrary boxes and scores: kept indices
// are valid and distinct, in non-increasing score order, no two kept boxes
// overlap above the threshold, and every dropped non-NaN box overlaps a kept
// higher-or-equal-scored box above the threshold.
func FuzzNMS(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 0.5)
	f.Add([]byte{0, 0, 10, 10, 9, 0, 0, 10, 10, 8}, 0.3)
	f.Fuzz(func(t *testing.T, data []byte, thresh float64) {
		if math.IsNaN(thresh) {
			return
		}
		var boxes []Box
		var scores []float32
		for len(data) >= 5 {
			x, y := float32(data[0]), float32(data[1])
			boxes = append(boxes, Box{x, y, x + float32(data[2]), y + float32(data[3])})
			scores = append(scores, float32(data[4])/255)
			data = data[5:]
		}
		keep, err := NMS(boxes, scores, thresh)
		if err != nil {
			t.Fatal(err)
		}
		kept := map[int]bool{}
		for k, i := range keep {
			if i < 0 || i >= len(boxes) || kept[i] {
				t.Fatalf("bad or repeated index %d in %v", i, keep)
			}
			kept[i] = true
			if k > 0 && scores[keep[k-1]] < scores[i] {
				t.Fatalf("scores not decreasing: %v", keep)
			}
			for _, j := range keep[:k] {
				if iou := IoU(boxes[i:i+1], boxes[j:j+1]).Data()[0]; float64(iou) > thresh {
					t.Fatalf("kept %d and %d overlap %v > %v", j, i, iou, thresh)
				}
			}
		}
		for i := range boxes {
			if kept[i] {
				continue
			}
			found := false
			for _, j := range keep {
				if scores[j] >= scores[i] && float64(IoU(boxes[i:i+1], boxes[j:j+1]).Data()[0]) > thresh {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("box %d dropped without a suppressor (keep %v)", i, keep)
			}
		}
	})
}

func BenchmarkNMS2000(b *testing.B) {
	boxes, scores, _ := randomBoxes(rand.New(rand.NewSource(1)), 2000, 400)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NMS(boxes, scores, 0.7); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIoU2000x5(b *testing.B) {
	boxes, _, _ := randomBoxes(rand.New(rand.NewSource(1)), 2000, 400)
	gt := boxes[:5]
	b.ReportAllocs()
	for b.Loop() {
		IoU(gt, boxes)
	}
}

// TestAppendForms checks that AppendEncode and AppendFlatten append
// Encode's and Flatten's results after dst's elements, and reuse dst's
// memory when it has room.
func TestAppendForms(t *testing.T) {
	c := NewCoder(10, 10, 5, 5)
	props := []Box{{10, 20, 50, 80}, {0, 0, 4, 4}}
	ref := []Box{{12, 18, 60, 70}, {1, 1, 3, 5}}
	want, err := c.Encode(ref, props)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 1, 16)
	dst[0] = -3
	got, err := c.AppendEncode(dst, ref, props)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != -3 || !slices.Equal(got[1:], want) || &got[0] != &dst[0] {
		t.Errorf("AppendEncode: %v, want -3 then %v in dst's memory", got, want)
	}
	if _, err := c.AppendEncode(dst, ref, props[:1]); !errors.Is(err, ErrInput) {
		t.Errorf("AppendEncode with mismatched lists: err %v, want ErrInput", err)
	}
	flat := AppendFlatten(dst[:1], props)
	if flat[0] != -3 || !slices.Equal(flat[1:], Flatten(props)) || &flat[0] != &dst[0] {
		t.Errorf("AppendFlatten: %v, want -3 then %v in dst's memory", flat, Flatten(props))
	}
}
