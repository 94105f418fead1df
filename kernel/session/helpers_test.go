package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/detlab/detlab/kernel/display"
)

// recorder is an Output that keeps everything.
type recorder struct {
	mu       sync.Mutex
	stdout   strings.Builder
	stderr   strings.Builder
	displays []display.Data
	updates  []display.Data
	clears   int
	inputs   []string // answers to give
	prompts  []string
}

func (r *recorder) Stream(name, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "stdout" {
		r.stdout.WriteString(text)
	} else {
		r.stderr.WriteString(text)
	}
}
func (r *recorder) Display(d display.Data) {
	r.mu.Lock()
	r.displays = append(r.displays, d)
	r.mu.Unlock()
}
func (r *recorder) Update(d display.Data) {
	r.mu.Lock()
	r.updates = append(r.updates, d)
	r.mu.Unlock()
}
func (r *recorder) Clear(bool) { r.mu.Lock(); r.clears++; r.mu.Unlock() }
func (r *recorder) Input(prompt string, password bool) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prompts = append(r.prompts, prompt)
	if len(r.inputs) == 0 {
		return "", errors.New("no input allowed")
	}
	a := r.inputs[0]
	r.inputs = r.inputs[1:]
	return a, nil
}

func (r *recorder) out() string  { r.mu.Lock(); defer r.mu.Unlock(); return r.stdout.String() }
func (r *recorder) errs() string { r.mu.Lock(); defer r.mu.Unlock(); return r.stderr.String() }

func newSession(t *testing.T) *Session {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// run executes code and returns the result's text/plain ("" for none),
// the recorder and the error.
func run(t *testing.T, s *Session, code string) (string, *recorder, error) {
	t.Helper()
	r := &recorder{}
	d, err := s.Execute(context.Background(), code, r)
	text := ""
	if d != nil {
		text, _ = d.MIME["text/plain"].(string)
	}
	return text, r, err
}

// mustRun is run failing the test on an error.
func mustRun(t *testing.T, s *Session, code string) (string, *recorder) {
	t.Helper()
	text, r, err := run(t, s, code)
	if err != nil {
		var ee *ExecError
		if errors.As(err, &ee) {
			t.Fatalf("cell %q: %v\n%s\nstderr: %s", code, err, strings.Join(ee.Traceback, "\n"), r.errs())
		}
		t.Fatalf("cell %q: %v", code, err)
	}
	return text, r
}
