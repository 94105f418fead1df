package hostcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// nmsKernel is a box.NMSBackend that runs the compiled detlab_nms_mask on
// the CPU and checks every mask word it returns against nmsRefMasks
// before handing it to lib/box's walk. Its launches cycle through shapes
// with few threads (each simulated thread is an OS thread, and with a
// 256-thread block a launch costs a fifth of a second on a loaded
// machine): blocks of 32 and 64 rows, one to three blocks, so the
// block-strided tile loop takes several turns.
type nmsKernel struct {
	t      *testing.T
	calls  int
	checks int // mask words compared
}

// nmsShapes are nmsKernel's launches, {grid, block}.
var nmsShapes = [][2]int{{1, 8}, {2, 16}, {1, 32}, {3, 8}, {2, 16}}

func (k *nmsKernel) NMSMasks(boxes []float32, cut float32, masks []uint64) error {
	k.t.Helper()
	k.calls++
	shape := nmsShapes[k.calls%len(nmsShapes)]
	got := nmsLaunch(k.t, boxes, cut, shape[0], shape[1])
	want := nmsRefMasks(boxes, cut)
	k.checks += len(want)
	checkMasks(k.t, fmt.Sprintf("%d boxes, cut %v", len(boxes)/4, cut), got, want)
	if len(masks) != len(got) {
		return fmt.Errorf("nmsKernel: %d mask words, lib/box passed %d", len(got), len(masks))
	}
	copy(masks, got)
	return nil
}

// nmsLaunch runs detlab_nms_mask on boxes (flat rows) at cut as
// <<<grid, block>>> and returns the masks.
func nmsLaunch(t *testing.T, boxes []float32, cut float32, grid, block int) []uint64 {
	t.Helper()
	n := len(boxes) / 4
	words := (n + 63) / 64
	// Poison the output: the kernel must write every word.
	poison := make([]uint64, n*words)
	for i := range poison {
		poison[i] = 0xdeadbeefdeadbeef
	}
	out := launch(t, "detlab_nms_mask", grid, block, []int64{int64(n), fbits(cut)}, f32b(boxes), u64b(poison))
	if !bytes.Equal(out[0], f32b(boxes)) {
		t.Fatalf("detlab_nms_mask wrote into its boxes")
	}
	return bu64(t, out[1])
}

// nmsRefMasks is NMSBackend's contract in Go: bit k of word w of row i set
// when box j = 64w+k > i and box.NMSPairSuppressed(box i, box j, cut).
func nmsRefMasks(flat []float32, cut float32) []uint64 {
	n := len(flat) / 4
	words := (n + 63) / 64
	at := func(i int) box.Box { return box.Box{X1: flat[4*i], Y1: flat[4*i+1], X2: flat[4*i+2], Y2: flat[4*i+3]} }
	m := make([]uint64, n*words)
	for i := range n {
		for j := i + 1; j < n; j++ {
			if box.NMSPairSuppressed(at(i), at(j), cut) {
				m[i*words+j/64] |= 1 << (j % 64)
			}
		}
	}
	return m
}

func checkMasks(t *testing.T, what string, got, want []uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d mask words, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad < 5 {
				t.Errorf("%s: mask word %d = %#016x, want %#016x", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d mask words differ", what, bad, len(want))
	}
}

func u64b(v []uint64) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func bu64(t *testing.T, b []byte) []uint64 {
	t.Helper()
	v := make([]uint64, len(b)/8)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// nmsThreshes are lib/box's reference thresholds, negative to NaN.
var nmsThreshes = []float64{-0.5, -1e-50, 0, 1e-50, 0.1, 1.0 / 3, 0.5, 0.7, 1, 2, math.Inf(1), math.Inf(-1), math.NaN()}

// nmsRefCase is lib/box's nmsRefCase (nms_ref_test.go), copied with its
// draw order so that, from math/rand seeded 7, trial t gives the same 300
// reference cases lib/box checks its CPU NMS on (ties, signed zeros, NaN
// and infinite scores and coordinates, empty boxes).
func nmsRefCase(rng *mrand.Rand, trial int) (boxes []box.Box, scores, offset []float32) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	specials := []float32{0, float32(math.Copysign(0, -1)), nan, inf, -inf, 1, 1, 0.5}
	n := rng.Intn(60)
	span := []float32{5, 50, 500}[trial%3]
	boxes = make([]box.Box, n)
	scores = make([]float32, n)
	offset = make([]float32, n)
	for i := range boxes {
		x, y := rng.Float32()*span, rng.Float32()*span
		boxes[i] = box.Box{X1: x, Y1: y, X2: x + rng.Float32()*span/2, Y2: y + rng.Float32()*span/2}
		if rng.Intn(4) == 0 {
			boxes[i].X2 = boxes[i].X1 // empty
		}
		if rng.Intn(15) == 0 {
			c := specials[rng.Intn(len(specials))]
			switch rng.Intn(4) {
			case 0:
				boxes[i].X1 = c
			case 1:
				boxes[i].Y1 = c
			case 2:
				boxes[i].X2 = c
			default:
				boxes[i].Y2 = c
			}
		}
		scores[i] = float32(rng.Intn(8)) / 8 // many ties
		if rng.Intn(10) == 0 {
			scores[i] = specials[rng.Intn(len(specials))]
		}
		offset[i] = float32(rng.Intn(3)) * (span + 1)
	}
	return boxes, scores, offset
}

// TestNMSReferenceCases runs lib/box's 300 reference cases through the
// compiled kernel (box.NMSWith and box.BatchedNMSWith with nmsKernel as
// the backend): every mask word equals the Go reference's and every keep
// list equals box.NMS's and box.BatchedNMS's. Each case runs at one of the
// 13 thresholds in turn (a launch costs a process and its threads), even
// trials through NMSWith, odd ones through BatchedNMSWith with labels from
// the case's offsets (its coordinate-offset path).
func TestNMSReferenceCases(t *testing.T) {
	rng := mrand.New(mrand.NewSource(7))
	k := &nmsKernel{t: t}
	for trial := range 300 {
		boxes, scores, offset := nmsRefCase(rng, trial)
		th := nmsThreshes[trial%len(nmsThreshes)]
		if trial%2 == 0 {
			want, err := box.NMS(boxes, scores, th)
			if err != nil {
				t.Fatal(err)
			}
			got, err := box.NMSWith(k, boxes, scores, th)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("trial %d thresh %v: kernel keeps %v (%v), box.NMS %v\nboxes %v\nscores %v", trial, th, got, err, want, boxes, scores)
			}
			continue
		}
		labels := make([]int, len(boxes))
		for i, o := range offset {
			labels[i] = int(o) % 3
		}
		want, err := box.BatchedNMS(boxes, scores, labels, th)
		if err != nil {
			t.Fatal(err)
		}
		got, err := box.BatchedNMSWith(k, boxes, scores, labels, th)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("trial %d thresh %v: batched, kernel keeps %v (%v), box.BatchedNMS %v\nboxes %v\nscores %v labels %v", trial, th, got, err, want, boxes, scores, labels)
		}
	}
	if k.calls < 200 {
		t.Fatalf("the kernel ran %d times", k.calls)
	}
	t.Logf("%d launches, %d mask words checked", k.calls, k.checks)
}

// TestNMSMaskSizes checks the masks of 0, 1, 63, 64, 65, 129 and 2000
// boxes (word and tile edges) at special cuts, then keep lists of
// proposal-like box sets (many heavy overlaps, score ties) against
// box.NMS and box.BatchedNMS, including BatchedNMS's per-label path.
func TestNMSMaskSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	proposals := func(n int) ([]box.Box, []float32, []int) {
		boxes, scores, labels := make([]box.Box, n), make([]float32, n), make([]int, n)
		for i := range boxes {
			x, y := rng.Float32()*400, rng.Float32()*300
			w, h := 8+rng.Float32()*120, 8+rng.Float32()*120
			boxes[i] = box.Box{X1: x, Y1: y, X2: x + w, Y2: y + h}
			if i > 0 && rng.IntN(4) == 0 { // a near copy of an earlier box
				b := boxes[rng.IntN(i)]
				d := rng.Float32() * 3
				boxes[i] = box.Box{X1: b.X1 + d, Y1: b.Y1, X2: b.X2 + d, Y2: b.Y2}
			}
			scores[i] = float32(rng.IntN(200)) / 200
			labels[i] = rng.IntN(3)
		}
		return boxes, scores, labels
	}
	negZero := float32(math.Copysign(0, -1))
	for _, tc := range []struct{ n, grid, block int }{
		{0, 1, 32}, {1, 1, 32}, {63, 2, 32}, {64, 1, 64}, {65, 1, 256}, {65, 3, 32}, {129, 2, 64}, {2000, 2, 64},
	} {
		boxes, _, _ := proposals(tc.n)
		flat := box.Flatten(boxes)
		for _, cut := range []float32{0.5, 0.7, negZero, 0, float32(math.Inf(1)), math.Nextafter32(1, 2)} {
			if tc.n == 2000 && cut != 0.7 {
				continue // one large launch is enough
			}
			checkMasks(t, fmt.Sprintf("%d boxes, cut %v, <<<%d, %d>>>", tc.n, cut, tc.grid, tc.block),
				nmsLaunch(t, flat, cut, tc.grid, tc.block), nmsRefMasks(flat, cut))
		}
	}
	k := &nmsKernel{t: t}
	for _, n := range []int{65, 300, 1001} {
		boxes, scores, labels := proposals(n)
		for _, th := range []float64{0.5, 0.7} {
			want, _ := box.NMS(boxes, scores, th)
			got, err := box.NMSWith(k, boxes, scores, th)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%d boxes thresh %v: kernel keeps %v (%v), box.NMS %v", n, th, got, err, want)
			}
			if n == 1001 && th == 0.7 {
				continue
			}
			want, _ = box.BatchedNMS(boxes, scores, labels, th)
			got, err = box.BatchedNMSWith(k, boxes, scores, labels, th)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%d boxes thresh %v: batched, kernel keeps %v (%v), box.BatchedNMS %v", n, th, got, err, want)
			}
			if len(want) == n || len(want) == 0 {
				t.Fatalf("%d boxes thresh %v: %d kept, the case tests nothing", n, th, len(want))
			}
		}
	}
}
