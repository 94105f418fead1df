package box

import (
	"errors"
	"math"
	"math/rand"
	"slices"
	"testing"
)

// goMasks is an NMSBackend written from NMSBackend's contract alone: every
// word of the n*words masks, bit k of word w of row i for box 64w+k > i,
// from NMSPairSuppressed. It counts its calls.
type goMasks struct {
	calls int
	boxes int // boxes compared over all calls
}

func (g *goMasks) NMSMasks(flat []float32, cut float32, masks []uint64) error {
	g.calls++
	n := len(flat) / 4
	g.boxes += n
	words := (n + 63) / 64
	if len(flat) != 4*n || len(masks) != n*words {
		return errors.New("goMasks: bad lengths")
	}
	at := func(i int) Box { return Box{flat[4*i], flat[4*i+1], flat[4*i+2], flat[4*i+3]} }
	for i := range n {
		for w := range words {
			var bits uint64
			for k := range 64 {
				if j := 64*w + k; j > i && j < n && NMSPairSuppressed(at(i), at(j), cut) {
					bits |= 1 << k
				}
			}
			masks[i*words+w] = bits
		}
	}
	return nil
}

// failingMasks is an NMSBackend whose device fails.
type failingMasks struct{}

var errDevice = errors.New("device lost")

func (failingMasks) NMSMasks([]float32, float32, []uint64) error { return errDevice }

// TestNMSWithBackendMatchesHost: NMSWith and BatchedNMSWith with a backend
// keep exactly what NMS and BatchedNMS keep, on the reference cases at
// every threshold (labels from the offsets: both batched paths) and on
// sizes around the 64-box mask words and the batched path switch.
func TestNMSWithBackendMatchesHost(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	g := &goMasks{}
	check := func(name string, boxes []Box, scores []float32, labels []int, th float64) {
		t.Helper()
		want, err := NMS(boxes, scores, th)
		if err != nil {
			t.Fatal(err)
		}
		got, err := NMSWith(g, boxes, scores, th)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s thresh %v: NMSWith = %v, %v; NMS = %v", name, th, got, err, want)
		}
		want, err = BatchedNMS(boxes, scores, labels, th)
		if err != nil {
			t.Fatal(err)
		}
		got, err = BatchedNMSWith(g, boxes, scores, labels, th)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s thresh %v: BatchedNMSWith = %v, %v; BatchedNMS = %v", name, th, got, err, want)
		}
	}
	for trial := range 300 {
		boxes, scores, offset := nmsRefCase(rng, trial)
		labels := make([]int, len(boxes))
		for i, o := range offset {
			labels[i] = int(o) % 3
		}
		for _, th := range nmsThreshes {
			check("reference case", boxes, scores, labels, th)
		}
	}
	for _, n := range []int{0, 1, 2, 63, 64, 65, 128, 129, 1001, 2000} {
		boxes, scores, labels := make([]Box, n), make([]float32, n), make([]int, n)
		for i := range boxes {
			x, y := rng.Float32()*300, rng.Float32()*300
			boxes[i] = Box{x, y, x + 10 + rng.Float32()*60, y + 10 + rng.Float32()*60}
			scores[i] = float32(rng.Intn(50)) / 50
			labels[i] = rng.Intn(4)
		}
		for _, th := range []float64{0.3, 0.7} {
			check("random", boxes, scores, labels, th)
		}
	}
	if g.calls == 0 || g.boxes == 0 {
		t.Fatal("the backend was never called")
	}
}

// TestNMSWithBackendSkips: the backend is not asked when nothing needs
// comparing (fewer than two candidates, NaN scores dropped, or a threshold
// no IoU exceeds).
func TestNMSWithBackendSkips(t *testing.T) {
	g := &goMasks{}
	nan := float32(math.NaN())
	two := []Box{{0, 0, 10, 10}, {1, 1, 11, 11}}
	for _, tc := range []struct {
		name   string
		boxes  []Box
		scores []float32
		thresh float64
		want   []int
	}{
		{"empty", nil, nil, 0.5, []int{}},
		{"one box", two[:1], []float32{1}, 0.5, []int{0}},
		{"one number score", two, []float32{nan, 0.5}, 0.5, []int{1}},
		{"NaN threshold", two, []float32{0.5, 0.9}, math.NaN(), []int{1, 0}},
		{"+Inf threshold", two, []float32{0.5, 0.9}, math.Inf(1), []int{1, 0}},
	} {
		got, err := NMSWith(g, tc.boxes, tc.scores, tc.thresh)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v, want %v", tc.name, got, err, tc.want)
		}
	}
	if g.calls != 0 {
		t.Errorf("backend called %d times", g.calls)
	}
	got, err := NMSWith(g, two, []float32{0.5, 0.9}, 0.5)
	if err != nil || !slices.Equal(got, []int{1}) || g.calls != 1 {
		t.Errorf("two overlapping boxes: got %v, %v after %d calls, want [1] after 1", got, err, g.calls)
	}
}

// TestNMSWithBackendErrors: a backend failure and bad input come back as
// errors naming the problem.
func TestNMSWithBackendErrors(t *testing.T) {
	two := []Box{{0, 0, 10, 10}, {1, 1, 11, 11}}
	many := make([]Box, 1200) // the per-label path
	manyScores, manyLabels := make([]float32, len(many)), make([]int, len(many))
	for i := range many {
		many[i] = Box{0, 0, 10, 10}
		manyScores[i] = float32(i)
	}
	if _, err := NMSWith(failingMasks{}, two, []float32{1, 2}, 0.5); !errors.Is(err, errDevice) || err.Error() != "box: nms backend: device lost" {
		t.Errorf("NMSWith: error %v", err)
	}
	if _, err := BatchedNMSWith(failingMasks{}, two, []float32{1, 2}, []int{0, 0}, 0.5); !errors.Is(err, errDevice) {
		t.Errorf("BatchedNMSWith (one NMS): error %v", err)
	}
	if _, err := BatchedNMSWith(failingMasks{}, many, manyScores, manyLabels, 0.5); !errors.Is(err, errDevice) {
		t.Errorf("BatchedNMSWith (per label): error %v", err)
	}
	if _, err := NMSWith(failingMasks{}, two, []float32{1}, 0.5); !errors.Is(err, ErrInput) {
		t.Errorf("NMSWith with 2 boxes and 1 score: error %v", err)
	}
	if _, err := BatchedNMSWith(failingMasks{}, two, []float32{1, 2}, []int{0, -1}, 0.5); !errors.Is(err, ErrInput) {
		t.Errorf("BatchedNMSWith with a negative label: error %v", err)
	}
}
