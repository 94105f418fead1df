package data

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detlab/detlab/lib/box"
)

var testAug = Pipeline{HFlip{P: 0.5}, ScaleJitter{Min: 0.8, Max: 1.2}, ColorJitter{Brightness: 0.2, Contrast: 0.2, Saturation: 0.2, Hue: 0.02}}

// digest summarises a batch: indices, pixel hashes and boxes.
func digest(b Batch) string {
	var sb strings.Builder
	for k, s := range b.Samples {
		h := fnv.New64a()
		h.Write(s.Image.(*image.RGBA).Pix)
		fmt.Fprintf(&sb, "%d:%x:%v:%v;", b.Indices[k], h.Sum64(), s.Boxes, s.Labels)
	}
	return sb.String()
}

func collect(t *testing.T, l *Loader, epoch, start int) []string {
	t.Helper()
	it := l.EpochFrom(context.Background(), epoch, start)
	defer it.Close()
	var out []string
	for {
		b, err := it.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Epoch != epoch || b.Index != start+len(out) {
			t.Fatalf("batch placed at epoch %d index %d, want %d %d", b.Epoch, b.Index, epoch, start+len(out))
		}
		out = append(out, digest(b))
	}
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	ds, err := Shapes(ShapesConfig{N: 23, Width: 64, Height: 64, MaxSize: 32, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	var ref [2][]string
	for _, workers := range []int{1, 2, 5} {
		l, err := NewLoader(ds, LoaderConfig{BatchSize: 4, Workers: workers, Prefetch: 1, Shuffle: true, Seed: 42, Augment: testAug})
		if err != nil {
			t.Fatal(err)
		}
		if l.NumBatches() != 6 {
			t.Fatalf("NumBatches %d", l.NumBatches())
		}
		for epoch := range 2 {
			got := collect(t, l, epoch, 0)
			if workers == 1 {
				ref[epoch] = got
				continue
			}
			if strings.Join(got, "\n") != strings.Join(ref[epoch], "\n") {
				t.Fatalf("epoch %d with %d workers differs from 1 worker", epoch, workers)
			}
		}
	}
	if ref[0][0] == ref[1][0] {
		t.Fatal("epochs 0 and 1 start with the same batch")
	}
	// Every index exactly once per epoch.
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 4, Shuffle: true, Seed: 42})
	seen := map[int]int{}
	for _, i := range l.Order(1) {
		seen[i]++
	}
	if len(seen) != 23 {
		t.Fatalf("order covers %d of 23 indices", len(seen))
	}
	// Resuming at batch 2 gives the rest of the same epoch.
	l, _ = NewLoader(ds, LoaderConfig{BatchSize: 4, Workers: 3, Shuffle: true, Seed: 42, Augment: testAug})
	if got := collect(t, l, 1, 2); strings.Join(got, "\n") != strings.Join(ref[1][2:], "\n") {
		t.Fatal("EpochFrom(1, 2) differs from the tail of epoch 1")
	}
	// DropLast and a different seed.
	l, _ = NewLoader(ds, LoaderConfig{BatchSize: 4, DropLast: true, Shuffle: true, Seed: 43, Augment: testAug})
	got := collect(t, l, 0, 0)
	if len(got) != 5 || got[0] == ref[0][0] {
		t.Fatalf("DropLast/seed 43: %d batches", len(got))
	}
	// Without Shuffle the order is the dataset's.
	l, _ = NewLoader(ds, LoaderConfig{BatchSize: 10})
	it := l.Epoch(context.Background(), 3)
	b, err := it.Next()
	it.Close()
	if err != nil || b.Indices[0] != 0 || b.Indices[9] != 9 {
		t.Fatalf("unshuffled first batch %v %v", b.Indices, err)
	}
}

// slowDataset delays each sample and counts calls.
type slowDataset struct {
	Dataset
	delay time.Duration
	calls atomic.Int32
	fail  int // index that fails, -1 none
}

func (d *slowDataset) Sample(i int) (Sample, error) {
	d.calls.Add(1)
	time.Sleep(d.delay)
	if i == d.fail {
		return Sample{}, fmt.Errorf("sample %d is broken", i)
	}
	return d.Dataset.Sample(i)
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoaderCancel(t *testing.T) {
	shapes, _ := Shapes(ShapesConfig{N: 200, Width: 32, Height: 32, MaxSize: 16})
	for _, how := range []string{"cancel after one batch", "cancel before any Next", "Close mid-epoch"} {
		t.Run(how, func(t *testing.T) {
			base := runtime.NumGoroutine()
			ds := &slowDataset{Dataset: shapes, delay: 2 * time.Millisecond, fail: -1}
			l, err := NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 4, Prefetch: 2, Augment: testAug})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			it := l.Epoch(ctx, 0)
			switch how {
			case "cancel after one batch":
				if _, err := it.Next(); err != nil {
					t.Fatal(err)
				}
				cancel()
				if _, err := it.Next(); !errors.Is(err, context.Canceled) {
					t.Fatalf("Next after cancel: %v", err)
				}
			case "cancel before any Next":
				time.Sleep(20 * time.Millisecond)
				cancel()
			case "Close mid-epoch":
				if _, err := it.Next(); err != nil {
					t.Fatal(err)
				}
				it.Close()
				if _, err := it.Next(); err == nil {
					t.Fatal("Next after Close returned a batch")
				}
				it.Close() // twice is fine
			}
			waitGoroutines(t, base)
			// Prefetch bounds the work done ahead: at most (Prefetch+2)
			// batches' samples plus one per worker were requested.
			if n := int(ds.calls.Load()); n > (2+2)*2+4+2 {
				t.Fatalf("%d samples read for at most one consumed batch", n)
			}
		})
	}
}

func TestLoaderErrors(t *testing.T) {
	shapes, _ := Shapes(ShapesConfig{N: 10, Width: 32, Height: 32, MaxSize: 16})
	ds := &slowDataset{Dataset: shapes, fail: 5}
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 3})
	n := 0
	it := l.Epoch(context.Background(), 0)
	for {
		b, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(b.Samples)
	}
	if n != 9 || l.Report().Count(LoadFailed) != 1 || !strings.Contains(l.Report().String(), "sample 5 is broken") {
		t.Fatalf("Skip: %d samples, report %v", n, l.Report())
	}
	l, _ = NewLoader(ds, LoaderConfig{BatchSize: 3, OnError: Fail})
	it = l.Epoch(context.Background(), 0)
	var err error
	for err == nil {
		_, err = it.Next()
	}
	if err == io.EOF || !strings.Contains(err.Error(), "sample 5") {
		t.Fatalf("Fail: %v", err)
	}
	if _, again := it.Next(); again != err {
		t.Fatalf("Next after the error: %v", again)
	}

	// A user dataset whose samples are inconsistent.
	bad := badDataset{}
	l, _ = NewLoader(bad, LoaderConfig{OnError: Fail})
	it = l.Epoch(context.Background(), 0)
	if _, err := it.Next(); err == nil || !strings.Contains(err.Error(), "1 boxes but 0 labels") {
		t.Fatalf("inconsistent sample: %v", err)
	}
	it.Close()

	tests := []struct {
		ds   Dataset
		cfg  LoaderConfig
		want string
	}{
		{nil, LoaderConfig{}, "needs a dataset"},
		{shapes, LoaderConfig{BatchSize: -1}, "BatchSize"},
		{shapes, LoaderConfig{Workers: -2}, "Workers"},
		{shapes, LoaderConfig{Prefetch: -1}, "Prefetch"},
		{shapes, LoaderConfig{OnError: 3}, "OnError"},
		{badDataset{classes: []string{"cat"}}, LoaderConfig{}, "must start with"},
	}
	for _, tc := range tests {
		if _, err := NewLoader(tc.ds, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

type badDataset struct{ classes []string }

func (badDataset) Len() int { return 1 }
func (d badDataset) Classes() []string {
	if d.classes != nil {
		return d.classes
	}
	return []string{Background, "thing"}
}
func (badDataset) Sample(int) (Sample, error) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	return Sample{ID: "bad", Image: img, Width: 4, Height: 4, Boxes: oneBox()}, nil
}

func oneBox() []box.Box { return []box.Box{box.New(0, 0, 1, 1)} }

func TestLoaderTensors(t *testing.T) {
	ds, _ := Shapes(ShapesConfig{N: 3, Width: 40, Height: 30, MaxSize: 16})
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 3, Tensors: true, Augment: Pipeline{ScaleJitter{Min: 0.5, Max: 1.5}}})
	it := l.Epoch(context.Background(), 0)
	defer it.Close()
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := b.Images()
	if err != nil {
		t.Fatal(err)
	}
	maxH, maxW := 0, 0
	for k, s := range b.Samples {
		if s.Pixels == nil || imgs[k] != s.Pixels {
			t.Fatal("Pixels not filled by the loader")
		}
		sh := s.Pixels.Shape()
		if sh[0] != 3 || sh[1] != s.Height || sh[2] != s.Width {
			t.Fatalf("pixels %v for a %dx%d image", sh, s.Width, s.Height)
		}
		// Pixel (0,0) red channel equals the image's.
		if got, want := s.Pixels.At(0, 0, 0), float32(s.Image.(*image.RGBA).Pix[0])/255; got != want {
			t.Fatalf("pixel %g, want %g", got, want)
		}
		maxH, maxW = max(maxH, s.Height), max(maxW, s.Width)
	}
	p, err := b.Padded(32)
	if err != nil {
		t.Fatal(err)
	}
	if sh := p.Shape(); sh[0] != 3 || sh[2] != (maxH+31)/32*32 || sh[3] != (maxW+31)/32*32 {
		t.Fatalf("padded %v for max %dx%d", sh, maxH, maxW)
	}
	if bt := b.BoxTensors(); len(bt) != 3 || bt[0].Dim(0) != len(b.Samples[0].Boxes) || len(b.Labels()[0]) != len(b.Samples[0].Boxes) {
		t.Fatal("BoxTensors/Labels do not match the samples")
	}
	// Load reproduces one sample of the epoch.
	s, err := l.Load(0, b.Indices[1])
	if err != nil || !equalBoxes(s.Boxes, b.Samples[1].Boxes) {
		t.Fatalf("Load differs from the batch: %v", err)
	}
}

// grayDataset is what a notebook user might write: one offset grayscale
// image with one box.
type grayDataset struct{}

func (grayDataset) Len() int          { return 1 }
func (grayDataset) Classes() []string { return []string{Background, "bar"} }
func (grayDataset) Sample(int) (Sample, error) {
	img := image.NewGray(image.Rect(5, 5, 25, 15)) // 20x10, not at the origin
	for y := 7; y < 10; y++ {
		for x := 5; x < 9; x++ {
			img.Pix[img.PixOffset(x, y)] = 200
		}
	}
	return Sample{ID: "g", Image: img, Width: 20, Height: 10, Boxes: []box.Box{box.New(0, 2, 4, 5)}, Labels: []int{1}}, nil
}

func TestLoaderUserDataset(t *testing.T) {
	l, err := NewLoader(grayDataset{}, LoaderConfig{Augment: HFlip{P: 1}, Tensors: true, OnError: Fail})
	if err != nil {
		t.Fatal(err)
	}
	it := l.Epoch(context.Background(), 0)
	defer it.Close()
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	s := b.Samples[0]
	if s.Boxes[0] != box.New(16, 2, 20, 5) {
		t.Fatalf("flipped box %v", s.Boxes[0])
	}
	img := s.Image.(*image.RGBA)
	if img.Rect != image.Rect(0, 0, 20, 10) || img.Pix[img.PixOffset(19, 2)] != 200 || img.Pix[img.PixOffset(15, 2)] != 0 {
		t.Fatal("flipped gray image wrong")
	}
	if s.Pixels.At(1, 2, 19) != 200.0/255 {
		t.Fatalf("tensor green at (2,19) = %g", s.Pixels.At(1, 2, 19))
	}
}
