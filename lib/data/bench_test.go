package data

import (
	"context"
	"io"
	"runtime"
	"testing"
)

// BenchmarkLoaderBCCD decodes and augments BCCD trainval images (640x480
// JPEG; flip, scale jitter 0.8-1.2, colour jitter) with two workers;
// images/s is the throughput.
func BenchmarkLoaderBCCD(b *testing.B) {
	ds, err := OpenVOC(bccdRoot(b), "trainval")
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewLoader(ds, LoaderConfig{BatchSize: 2, Workers: 2, Shuffle: true, Augment: testAug})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("GOMAXPROCS %d, %s/%s", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	n := 0
	b.ResetTimer()
	for epoch := 0; n < b.N; epoch++ {
		it := l.Epoch(context.Background(), epoch)
		for n < b.N {
			batch, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(batch.Samples)
		}
		it.Close()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkDecodeBCCD is decoding alone, one goroutine.
func BenchmarkDecodeBCCD(b *testing.B) {
	ds, err := OpenVOC(bccdRoot(b), "test")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := ds.Sample(i % ds.Len()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkShapes is generating one 256x256 synthetic image.
func BenchmarkShapes(b *testing.B) {
	ds, _ := Shapes(ShapesConfig{N: 1 << 20})
	for i := 0; i < b.N; i++ {
		if _, err := ds.Sample(i); err != nil {
			b.Fatal(err)
		}
	}
}
