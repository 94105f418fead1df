package cuda_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/detlab/detlab/internal/nmsref"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/rpn"
)

// nmsBoxes draws n proposal-like boxes: a quarter are near copies of
// earlier ones (heavy overlaps), scores have ties and a few NaNs, labels
// are 0..3.
func nmsBoxes(rng *rand.Rand, n int) ([]box.Box, []float32, []int) {
	boxes, scores, labels := make([]box.Box, n), make([]float32, n), make([]int, n)
	for i := range boxes {
		x, y := rng.Float32()*600, rng.Float32()*450
		w, h := 8+rng.Float32()*150, 8+rng.Float32()*150
		boxes[i] = box.Box{X1: x, Y1: y, X2: x + w, Y2: y + h}
		if i > 0 && rng.Intn(4) == 0 {
			b := boxes[rng.Intn(i)]
			d := rng.Float32() * 4
			boxes[i] = box.Box{X1: b.X1 + d, Y1: b.Y1 - d, X2: b.X2 + d, Y2: b.Y2}
		}
		scores[i] = float32(rng.Intn(500)) / 500
		if rng.Intn(100) == 0 {
			scores[i] = float32(math.NaN())
		}
		labels[i] = rng.Intn(4)
	}
	return boxes, scores, labels
}

// nmsChecks runs NMS on b against the host: the masks of boxes in managed
// and in Go memory against the Go reference, then keep lists of NMSWith
// and BatchedNMSWith (both of its paths) against NMS and BatchedNMS, and
// the bad-input errors.
func nmsChecks(t *testing.T, b *cuda.Backend, sizes []int) {
	rng := rand.New(rand.NewSource(11))
	for _, n := range []int{1, 63, 64, 65, 300} {
		boxes, _, _ := nmsBoxes(rng, n)
		flat := box.Flatten(boxes)
		for _, where := range []string{"go", "managed"} {
			in := flat
			if where == "managed" {
				in = b.Alloc(len(flat))
				copy(in, flat)
			}
			for _, cut := range []float32{0.7, 0.5, 0} {
				masks := make([]uint64, n*((n+63)/64))
				for i := range masks {
					masks[i] = 0xdeadbeefdeadbeef
				}
				if err := b.NMSMasks(in, cut, masks); err != nil {
					t.Fatalf("%d boxes in %s memory: %v", n, where, err)
				}
				if want := nmsref.Masks(flat, cut); !slices.Equal(masks, want) {
					t.Fatalf("%d boxes in %s memory, cut %v: masks differ from the reference", n, where, cut)
				}
			}
			if where == "managed" {
				b.Free(in)
			}
		}
	}
	for _, n := range sizes {
		boxes, scores, labels := nmsBoxes(rng, n)
		for _, th := range []float64{0.7, 0.5} {
			start := time.Now()
			got, err := box.NMSWith(b, boxes, scores, th)
			dev := time.Since(start)
			start = time.Now()
			want, _ := box.NMS(boxes, scores, th)
			host := time.Since(start)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%d boxes thresh %v: NMSWith on %s keeps %d (%v), NMS %d", n, th, b.Name(), len(got), err, len(want))
			}
			if n >= 2000 {
				t.Logf("%d boxes thresh %v: %d kept; NMSWith on the backend %v, host NMS %v", n, th, len(want), dev, host)
			}
			got, err = box.BatchedNMSWith(b, boxes, scores, labels, th)
			want, _ = box.BatchedNMS(boxes, scores, labels, th)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%d boxes thresh %v: BatchedNMSWith on %s keeps %d (%v), BatchedNMS %d", n, th, b.Name(), len(got), err, len(want))
			}
		}
	}
	for _, tc := range []struct {
		name  string
		boxes []float32
		masks []uint64
		want  string
	}{
		{"ragged boxes", make([]float32, 5), make([]uint64, 1), "5 box values are not a multiple of 4"},
		{"short masks", make([]float32, 4*65), make([]uint64, 65), "65 mask words for 65 boxes, want 130"},
		{"long masks", make([]float32, 4), make([]uint64, 2), "2 mask words for 1 boxes, want 1"},
	} {
		err := b.NMSMasks(tc.boxes, 0.5, tc.masks)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cuda: NMSMasks: ") {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := b.NMSMasks(nil, 0.5, nil); err != nil {
		t.Errorf("no boxes: %v", err)
	}
}

func TestNMSOnFakeDevice(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	defer b.Close()
	nmsChecks(t, b, []int{0, 1, 2, 64, 65, 1001, 2000})
}

// TestGPUNMS: the same checks on the GPU, up to 12000 boxes (torchvision's
// pre-NMS top-n with five FPN levels).
func TestGPUNMS(t *testing.T) {
	b := gpu(t)
	sizes := []int{0, 1, 2, 64, 65, 1001, 2000}
	if !fakeMode() {
		sizes = append(sizes, 12000)
	}
	nmsChecks(t, b, sizes)
}

func TestNMSClosedBackend(t *testing.T) {
	b := cuda.NewFakeBackend(false)
	b.Close()
	err := b.NMSMasks(make([]float32, 8), 0.5, make([]uint64, 2))
	if !errors.Is(err, cuda.ErrClosed) || err.Error() != "cuda: NMSMasks: "+strings.TrimPrefix(cuda.ErrClosed.Error(), "cuda: ") {
		t.Fatalf("NMSMasks on a closed backend: %v", err)
	}
	if _, err := box.NMSWith(b, []box.Box{box.New(0, 0, 1, 1), box.New(0, 0, 1, 1)}, []float32{1, 2}, 0.5); !errors.Is(err, cuda.ErrClosed) {
		t.Fatalf("NMSWith on a closed backend: %v", err)
	}
}

// nmsCounter is a backend whose NMS calls are counted (every other method
// is the embedded Backend's).
type nmsCounter struct {
	*cuda.Backend
	calls int
}

func (c *nmsCounter) NMSMasks(boxes []float32, cut float32, masks []uint64) error {
	c.calls++
	return c.Backend.NMSMasks(boxes, cut, masks)
}

// TestNMSThroughRPNAndRoI: the proposal and detection steps give the same
// results with their NMS on the (fake) device as on the host, through
// both of BatchedNMS's paths.
func TestNMSThroughRPNAndRoI(t *testing.T) {
	b := &nmsCounter{Backend: cuda.NewFakeBackend(false)}
	defer b.Close()
	rng := rand.New(rand.NewSource(12))
	const h, w = 448, 600
	perLevel := []int{3000, 1200}
	anchors, _, _ := nmsBoxes(rng, perLevel[0]+perLevel[1])
	obj, deltas := make([]float32, len(anchors)), make([]float32, 4*len(anchors))
	for i := range obj {
		obj[i] = float32(rng.NormFloat64() * 3)
	}
	for i := range deltas {
		deltas[i] = float32(rng.NormFloat64() * 0.2)
	}
	p := rpn.Defaults().Proposals(true)
	wantB, wantS, err := rpn.FilterProposals(obj, deltas, anchors, perLevel, h, w, p)
	if err != nil {
		t.Fatal(err)
	}
	gotB, gotS, err := rpn.FilterProposalsWith(b, obj, deltas, anchors, perLevel, h, w, p)
	if err != nil || !slices.Equal(gotB, wantB) || !slices.Equal(gotS, wantS) {
		t.Fatalf("FilterProposalsWith: %d proposals (%v), FilterProposals %d", len(gotB), err, len(wantB))
	}
	if b.calls == 0 || len(wantB) == 0 || len(wantB) == p.PreNMSTopN+1200 {
		t.Fatalf("%d NMS calls on the device, %d proposals: the case tests nothing", b.calls, len(wantB))
	}
	for _, r := range []int{200, 400} { // 4 classes: ~600 and ~1200 candidates, one NMS and one per class
		props := wantB[:r]
		const classes = 4
		logits, reg := make([]float32, r*classes), make([]float32, 4*r*classes)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64())
		}
		for i := range reg {
			reg[i] = float32(rng.NormFloat64() * 0.5)
		}
		c := roi.Defaults()
		want, err := roi.PostprocessDetections(logits, reg, props, classes, h, w, c)
		if err != nil {
			t.Fatal(err)
		}
		before := b.calls
		got, err := roi.PostprocessDetectionsWith(b, logits, reg, props, classes, h, w, c)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%d proposals: PostprocessDetectionsWith: %d detections (%v), PostprocessDetections %d", r, len(got.Boxes), err, len(want.Boxes))
		}
		if b.calls == before || len(want.Boxes) == 0 {
			t.Fatalf("%d proposals: %d NMS calls on the device, %d detections: the case tests nothing", r, b.calls-before, len(want.Boxes))
		}
	}
}

// BenchmarkGPUNMS times box.NMSWith on the backend (host sort, mask
// kernel, mask copy, host walk) against box.NMS on the host, for the RPN's
// 2000 training proposals and 12000 boxes (for the GPU session: -test.bench
// GPUNMS -test.run '^$').
func BenchmarkGPUNMS(b *testing.B) {
	be := gpu(b)
	for _, n := range []int{2000, 12000} {
		boxes, scores, _ := nmsBoxes(rand.New(rand.NewSource(13)), n)
		for _, where := range []string{"device", "host"} {
			var nb box.NMSBackend
			if where == "device" {
				nb = be
			}
			b.Run(fmt.Sprintf("%d/%s", n, where), func(b *testing.B) {
				before := be.Stats()
				for range b.N {
					if _, err := box.NMSWith(nb, boxes, scores, 0.7); err != nil {
						b.Fatal(err)
					}
				}
				reportStats(b, be, before)
			})
		}
	}
}
