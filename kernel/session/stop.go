package session

import (
	"context"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/traefik/yaegi/interp"
)

// stopper reaches the fields of a yaegi v0.16.1 Interpreter that its
// EvalWithContext uses to stop running code. EvalWithContext returns as
// soon as the context is done, while the interpreter's goroutine goes on
// until the code notices; the session must know when it has really
// returned before it evaluates anything else in that interpreter. So the
// session runs Eval in a goroutine of its own and stops it the way
// EvalWithContext does. The fields are checked by name and type; when they
// do not match (another yaegi version), stopper is nil and the session
// falls back to EvalWithContext and waiting for the goroutine to vanish.
type stopper struct {
	id         *uint64
	done       *chan struct{}
	cancelChan *bool
	mu         *sync.RWMutex
}

func newStopper(in *interp.Interpreter) *stopper {
	v := reflect.ValueOf(in).Elem()
	field := func(name string, t reflect.Type) unsafe.Pointer {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Type() != t {
			return nil
		}
		return unsafe.Pointer(f.UnsafeAddr())
	}
	id := field("id", reflect.TypeOf(uint64(0)))
	done := field("done", reflect.TypeOf((chan struct{})(nil)))
	cc := field("cancelChan", reflect.TypeOf(false))
	mu := field("mutex", reflect.TypeOf(sync.RWMutex{}))
	if id == nil || done == nil || cc == nil || mu == nil {
		return nil
	}
	return &stopper{id: (*uint64)(id), done: (*chan struct{})(done), cancelChan: (*bool)(cc), mu: (*sync.RWMutex)(mu)}
}

// evalStoppable evaluates src in g, stopping it when ctx is done and
// waiting up to the grace period for it to return.
func (s *Session) evalStoppable(ctx context.Context, g *generation, src string) evalResult {
	st := g.stop
	st.mu.Lock()
	*st.done = make(chan struct{})
	*st.cancelChan = true // channel operations also watch done
	st.mu.Unlock()
	fin := make(chan struct{})
	var v reflect.Value
	var err error
	go func() {
		defer close(fin)
		defer func() {
			// Some compile-phase panics escape Eval.
			if r := recover(); r != nil {
				err = interp.Panic{Value: r, Stack: debug.Stack()}
			}
		}()
		v, err = g.in.Eval(src)
	}()
	select {
	case <-fin:
		return evalResult{v: v, err: err}
	case <-ctx.Done():
	}
	atomic.AddUint64(st.id, 1)
	st.mu.RLock()
	close(*st.done)
	st.mu.RUnlock()
	t := time.NewTimer(s.opts.InterruptGrace)
	defer t.Stop()
	select {
	case <-fin:
		return evalResult{err: ctx.Err(), interrupted: true}
	case <-t.C:
		return evalResult{err: ctx.Err(), interrupted: true, abandoned: true}
	}
}
