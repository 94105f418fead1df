package session

import (
	"context"
	"runtime"
	"testing"
)

func BenchmarkExecute(b *testing.B) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	out := &recorder{}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Execute(ctx, "1+1", out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewGeneration(b *testing.B) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < b.N; i++ {
		if _, err := s.newGeneration(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExecuteMemory runs many small cells and checks the heap does not grow
// without bound.
func TestExecuteMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 3000 cells")
	}
	s := newSession(t)
	out := &recorder{}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for i := 0; i < 500; i++ {
		s.Execute(context.Background(), "1+1", out)
	}
	before := heap()
	for i := 0; i < 3000; i++ {
		if _, err := s.Execute(context.Background(), "1+1", out); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	per := (float64(after) - float64(before)) / 3000
	t.Logf("heap %d -> %d bytes over 3000 cells (%.0f bytes per cell)", before, after, per)
	// yaegi alone keeps about 3 KB per evaluation; recycling the
	// generation must keep the session well under that on average.
	if per > 1500 {
		t.Errorf("the heap grew by %.0f bytes per cell", per)
	}
}
