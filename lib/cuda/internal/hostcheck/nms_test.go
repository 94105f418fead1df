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

	"github.com/detlab/detlab/internal/nmscases"
	"github.com/detlab/detlab/internal/nmsref"
	"github.com/detlab/detlab/lib/box"
)

// The kernel runs in batches: a driver run costs a process and an OS
// thread per simulated GPU thread, a tenth of a second or more on a loaded
// machine, so one run per NMS would make the 300 reference cases take
// minutes. Instead each test drives lib/box twice. First with nmsRecorder,
// which answers every NMSMasks call with the Go reference masks and
// records the problem (the keep lists are checked against box.NMS); then
// the kernel runs on all recorded problems in a few driver runs and every
// mask word must equal the reference's; then the same calls again with
// nmsReplay, which hands lib/box the KERNEL's masks, problem by problem,
// and the keep lists are checked against box.NMS once more.

// nmsProblem is one NMSMasks call: its boxes and cut, the reference masks
// and the kernel's.
type nmsProblem struct {
	flat   []float32
	cut    float32
	want   []uint64
	kernel []uint64
}

// nmsRecorder is a box.NMSBackend that answers with nmsref.Masks and
// records each problem.
type nmsRecorder struct{ problems []*nmsProblem }

func (r *nmsRecorder) NMSMasks(boxes []float32, cut float32, masks []uint64) error {
	want := nmsref.Masks(boxes, cut)
	if len(masks) != len(want) {
		return fmt.Errorf("nmsRecorder: lib/box passed %d mask words for %d boxes, want %d", len(masks), len(boxes)/4, len(want))
	}
	copy(masks, want)
	r.problems = append(r.problems, &nmsProblem{flat: slices.Clone(boxes), cut: cut, want: want})
	return nil
}

// nmsShapes are the launches {grid, block} the recorded problems are
// spread over: one to three blocks of 4 to 16 rows, so the block-strided
// tile loop takes several turns. The blocks are small because the
// simulated threads of a block meet at OS-thread barriers, which cost
// milliseconds each on a loaded machine (TestNMSMaskSizes runs the
// 64- and 256-thread blocks).
var nmsShapes = [][2]int{{1, 8}, {2, 8}, {1, 16}, {3, 4}, {2, 16}}

// runKernel runs detlab_nms_mask on every recorded problem (problem i with
// launch shape nmsShapes[i%5], one driver run per shape) and checks every
// mask word against the reference.
func (r *nmsRecorder) runKernel(t *testing.T) {
	t.Helper()
	if len(r.problems) == 0 {
		t.Fatal("lib/box never called the backend")
	}
	words := 0
	for si, shape := range nmsShapes {
		var group []*nmsProblem
		for i := si; i < len(r.problems); i += len(nmsShapes) {
			group = append(group, r.problems[i])
		}
		if len(group) == 0 {
			continue
		}
		got := nmsLaunch(t, group, shape[0], shape[1])
		for i, p := range group {
			checkMasks(t, fmt.Sprintf("%d boxes, cut %v, <<<%d, %d>>>", len(p.flat)/4, p.cut, shape[0], shape[1]), got[i], p.want)
			p.kernel = got[i]
			words += len(p.want)
		}
	}
	t.Logf("%d kernel launches, %d mask words equal to the reference", len(r.problems), words)
}

// nmsReplay is a box.NMSBackend handing out the kernel's masks of the
// recorded problems, in order; each call must be the recorded one.
type nmsReplay struct {
	problems []*nmsProblem
	next     int
}

func (r *nmsReplay) NMSMasks(boxes []float32, cut float32, masks []uint64) error {
	if r.next >= len(r.problems) {
		return fmt.Errorf("nmsReplay: call %d, only %d recorded", r.next, len(r.problems))
	}
	p := r.problems[r.next]
	r.next++
	if !slices.Equal(math32Bits(boxes), math32Bits(p.flat)) || math.Float32bits(cut) != math.Float32bits(p.cut) || len(masks) != len(p.kernel) {
		return fmt.Errorf("nmsReplay: call %d differs from the recorded one", r.next-1)
	}
	copy(masks, p.kernel)
	return nil
}

func math32Bits(v []float32) []uint32 {
	b := make([]uint32, len(v))
	for i, x := range v {
		b[i] = math.Float32bits(x)
	}
	return b
}

// checkThroughKernel runs cases (keep-list checks through NMSWith and
// BatchedNMSWith with the given backend) with reference masks, runs the
// kernel on what they asked, and runs them again on the kernel's masks.
func checkThroughKernel(t *testing.T, cases func(nb box.NMSBackend)) {
	t.Helper()
	rec := &nmsRecorder{}
	cases(rec)
	rec.runKernel(t)
	if t.Failed() {
		return
	}
	rep := &nmsReplay{problems: rec.problems}
	cases(rep)
	if rep.next != len(rec.problems) {
		t.Fatalf("the replay made %d calls, the recording %d", rep.next, len(rec.problems))
	}
}

// nmsLaunch runs detlab_nms_mask as <<<grid, block>>> on each problem (one
// driver run) and returns the masks. The mask buffers start poisoned: the
// kernel must write every word.
func nmsLaunch(t *testing.T, problems []*nmsProblem, grid, block int) [][]uint64 {
	t.Helper()
	var scalars []int64
	var bufs [][]byte
	for _, p := range problems {
		n := len(p.flat) / 4
		poison := make([]uint64, n*((n+63)/64))
		for i := range poison {
			poison[i] = 0xdeadbeefdeadbeef
		}
		scalars = append(scalars, int64(n), fbits(p.cut))
		bufs = append(bufs, f32b(p.flat), u64b(poison))
	}
	out := launch(t, "detlab_nms_mask", grid, block, scalars, bufs...)
	masks := make([][]uint64, len(problems))
	for i, p := range problems {
		if !bytes.Equal(out[2*i], f32b(p.flat)) {
			t.Fatalf("detlab_nms_mask wrote into its boxes")
		}
		masks[i] = bu64(t, out[2*i+1])
	}
	return masks
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

// nmsThreshes are the reference thresholds, negative to NaN.
var nmsThreshes = nmscases.Thresholds

// nmsRefCase draws lib/box's reference case trial (nmscases.Case): from
// math/rand seeded 7 it gives the same cases lib/box checks its CPU NMS on.
func nmsRefCase(rng *mrand.Rand, trial int) (boxes []box.Box, scores, offset []float32) {
	coords, scores, offset := nmscases.Case(rng, trial)
	boxes = make([]box.Box, len(coords))
	for i, c := range coords {
		boxes[i] = box.Box{X1: c[0], Y1: c[1], X2: c[2], Y2: c[3]}
	}
	return boxes, scores, offset
}

// TestNMSReferenceCases runs lib/box's 300 reference cases through the
// compiled kernel (checkThroughKernel): box.NMSWith on the plain boxes and
// box.BatchedNMSWith with labels from the case's offsets (its
// coordinate-offset path) keep exactly what box.NMS and box.BatchedNMS
// keep, and every mask word equals the Go reference's. Each case runs at
// two of the 13 thresholds, in turn (lib/box's own test runs all 13 on
// the CPU; here every launch costs OS threads).
func TestNMSReferenceCases(t *testing.T) {
	checkThroughKernel(t, func(nb box.NMSBackend) {
		rng := mrand.New(mrand.NewSource(7))
		for trial := range 300 {
			boxes, scores, offset := nmsRefCase(rng, trial)
			labels := make([]int, len(boxes))
			for i, o := range offset {
				labels[i] = int(o) % 3
			}
			th := nmsThreshes[trial%len(nmsThreshes)]
			want, err := box.NMS(boxes, scores, th)
			if err != nil {
				t.Fatal(err)
			}
			got, err := box.NMSWith(nb, boxes, scores, th)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("trial %d thresh %v: keeps %v (%v), box.NMS %v\nboxes %v\nscores %v", trial, th, got, err, want, boxes, scores)
			}
			th = nmsThreshes[(trial+5)%len(nmsThreshes)]
			want, err = box.BatchedNMS(boxes, scores, labels, th)
			if err != nil {
				t.Fatal(err)
			}
			got, err = box.BatchedNMSWith(nb, boxes, scores, labels, th)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("trial %d thresh %v: batched, keeps %v (%v), box.BatchedNMS %v\nboxes %v\nscores %v labels %v", trial, th, got, err, want, boxes, scores, labels)
			}
		}
	})
}

// nmsProposals draws n proposal-like boxes (many heavy overlaps: a
// quarter are near copies of earlier ones), scores with ties and labels
// 0..2.
func nmsProposals(rng *rand.Rand, n int) ([]box.Box, []float32, []int) {
	boxes, scores, labels := make([]box.Box, n), make([]float32, n), make([]int, n)
	for i := range boxes {
		x, y := rng.Float32()*400, rng.Float32()*300
		w, h := 8+rng.Float32()*120, 8+rng.Float32()*120
		boxes[i] = box.Box{X1: x, Y1: y, X2: x + w, Y2: y + h}
		if i > 0 && rng.IntN(4) == 0 {
			b := boxes[rng.IntN(i)]
			d := rng.Float32() * 3
			boxes[i] = box.Box{X1: b.X1 + d, Y1: b.Y1, X2: b.X2 + d, Y2: b.Y2}
		}
		scores[i] = float32(rng.IntN(200)) / 200
		labels[i] = rng.IntN(3)
	}
	return boxes, scores, labels
}

// TestNMSMaskSizes checks the masks of 0, 1, 63, 64, 65, 129 and 2000
// boxes (word and tile edges; 65 boxes also in one 256-thread block) at
// special cuts, then keep lists of proposal-like sets of 2 to 2000 boxes
// through the kernel, BatchedNMS's per-label path (over 1000 boxes)
// included.
func TestNMSMaskSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	negZero := float32(math.Copysign(0, -1))
	for _, tc := range []struct{ n, grid, block int }{
		{0, 1, 32}, {1, 1, 32}, {63, 2, 32}, {64, 1, 64}, {65, 1, 256}, {65, 3, 16}, {129, 2, 64}, {2000, 2, 64},
	} {
		boxes, _, _ := nmsProposals(rng, tc.n)
		flat := box.Flatten(boxes)
		var problems []*nmsProblem
		for _, cut := range []float32{0.5, 0.7, negZero, 0, float32(math.Inf(1)), math.Nextafter32(1, 2)} {
			if tc.n != 2000 || cut == 0.7 { // one large launch is enough
				problems = append(problems, &nmsProblem{flat: flat, cut: cut, want: nmsref.Masks(flat, cut)})
			}
		}
		for i, got := range nmsLaunch(t, problems, tc.grid, tc.block) {
			p := problems[i]
			checkMasks(t, fmt.Sprintf("%d boxes, cut %v, <<<%d, %d>>>", tc.n, p.cut, tc.grid, tc.block), got, p.want)
		}
	}
	type set struct {
		boxes  []box.Box
		scores []float32
		labels []int
	}
	var sets []set
	for _, n := range []int{2, 65, 300, 1001, 2000} {
		b, s, l := nmsProposals(rng, n)
		sets = append(sets, set{b, s, l})
	}
	checkThroughKernel(t, func(nb box.NMSBackend) {
		for _, c := range sets {
			n := len(c.boxes)
			for _, th := range []float64{0.5, 0.7} {
				want, _ := box.NMS(c.boxes, c.scores, th)
				got, err := box.NMSWith(nb, c.boxes, c.scores, th)
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("%d boxes thresh %v: keeps %v (%v), box.NMS %v", n, th, got, err, want)
				}
				if n > 2 && (len(want) == n || len(want) == 0) {
					t.Fatalf("%d boxes thresh %v: %d kept, the case tests nothing", n, th, len(want))
				}
				want, _ = box.BatchedNMS(c.boxes, c.scores, c.labels, th)
				got, err = box.BatchedNMSWith(nb, c.boxes, c.scores, c.labels, th)
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("%d boxes thresh %v: batched, keeps %v (%v), box.BatchedNMS %v", n, th, got, err, want)
				}
			}
		}
	})
}
