package freelist

import (
	"sync"
	"testing"
)

func TestListReusesUpToMax(t *testing.T) {
	var l List[int]
	first := l.Get()
	*first = 7
	l.Put(first)
	if got := l.Get(); got != first || *got != 7 {
		t.Fatalf("Get after Put = %p (%d), want the released %p (7)", got, *got, first)
	}
	if got := l.Get(); got == first {
		t.Fatal("an empty list handed out an object still in use")
	}
	objs := make([]*int, Max+3)
	for i := range objs {
		objs[i] = new(int)
		l.Put(objs[i])
	}
	seen := map[*int]bool{}
	for range Max {
		seen[l.Get()] = true
	}
	if len(seen) != Max {
		t.Fatalf("%d distinct objects back, want %d", len(seen), Max)
	}
	for _, o := range objs[Max:] {
		if seen[o] {
			t.Fatal("the list kept more than Max objects")
		}
	}
}

func TestListSteadyStateAllocatesNothing(t *testing.T) {
	var l List[[64]byte]
	l.Put(l.Get())
	if n := testing.AllocsPerRun(100, func() { l.Put(l.Get()) }); n != 0 {
		t.Fatalf("Get/Put allocated %.0f times per call, want 0", n)
	}
}

func TestListConcurrent(t *testing.T) {
	var l List[int]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				x := l.Get()
				*x++
				l.Put(x)
			}
		}()
	}
	wg.Wait()
}
