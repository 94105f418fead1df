package session

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// pipeStream is one of a session's output pipes. What the interpreter (and,
// with CaptureFDs, the whole process) writes to w is read by a goroutine
// and forwarded to the session's current output.
type pipeStream struct {
	name  string
	r     *os.File
	w     *os.File // the writing end handed to cells: a pipe, or os.Stdout/os.Stderr when captured
	fd    int      // the captured descriptor, or -1
	save  int      // the descriptor's original, or -1
	saved *os.File // owns save

	mu   sync.Mutex
	next int
	wait map[int]chan struct{}
	done chan struct{}
}

// syncPrefix starts the markers sync writes into a pipe to learn when
// everything before them has been forwarded.
const syncPrefix = "\x00detlab-sync-"

// newStreams opens the session's stdout and stderr pipes, capturing the
// process's descriptors 1 and 2 when capture is set.
func newStreams(s *Session, capture bool) ([]*pipeStream, error) {
	var out []*pipeStream
	for i, name := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			stopStreams(out)
			return nil, fmt.Errorf("session: %w", err)
		}
		ps := &pipeStream{name: name, r: r, w: w, fd: -1, save: -1, wait: map[int]chan struct{}{}, done: make(chan struct{})}
		if capture {
			if err := captureFD(ps, i+1); err != nil {
				r.Close()
				w.Close()
				stopStreams(out)
				return nil, fmt.Errorf("session: capturing output: %w", err)
			}
		}
		out = append(out, ps)
		go ps.read(s)
	}
	return out, nil
}

// read forwards the pipe to the session, handling sync markers.
func (ps *pipeStream) read(s *Session) {
	defer close(ps.done)
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := ps.r.Read(buf)
		pending = append(pending, buf[:n]...)
		pending = ps.forward(s, pending)
		if err != nil {
			if len(pending) > 0 {
				s.stream(ps.name, string(pending))
			}
			return
		}
	}
}

// forward sends the complete part of p and returns what must wait for more
// bytes: a possible start of a sync marker or an incomplete UTF-8 sequence.
func (ps *pipeStream) forward(s *Session, p []byte) []byte {
	for {
		i := bytes.Index(p, []byte(syncPrefix))
		if i < 0 {
			break
		}
		j := bytes.IndexByte(p[i+len(syncPrefix):], 0)
		if j < 0 {
			s.stream(ps.name, string(p[:i]))
			return append([]byte(nil), p[i:]...)
		}
		s.stream(ps.name, string(p[:i]))
		var id int
		fmt.Sscan(string(p[i+len(syncPrefix):i+len(syncPrefix)+j]), &id)
		ps.mu.Lock()
		if ch, ok := ps.wait[id]; ok {
			close(ch)
			delete(ps.wait, id)
		}
		ps.mu.Unlock()
		p = p[i+len(syncPrefix)+j+1:]
	}
	keep := 0
	if k := bytes.LastIndexByte(p, 0); k >= 0 && bytes.HasPrefix([]byte(syncPrefix), p[k:]) {
		keep = len(p) - k // a marker's beginning
	}
	end := len(p) - keep
	for back := 1; back <= 3 && back <= end; back++ {
		c := p[end-back]
		if c < 0x80 {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(p[end-back : end]) {
				keep += back // an incomplete rune
			}
			break
		}
	}
	s.stream(ps.name, string(p[:len(p)-keep]))
	return append([]byte(nil), p[len(p)-keep:]...)
}

// syncStreams waits (at most a second) until everything written to the
// pipes so far has been forwarded.
func syncStreams(streams []*pipeStream) {
	var chans []chan struct{}
	for _, ps := range streams {
		ps.mu.Lock()
		ps.next++
		id := ps.next
		ch := make(chan struct{})
		ps.wait[id] = ch
		ps.mu.Unlock()
		if _, err := ps.w.Write([]byte(fmt.Sprintf("%s%d\x00", syncPrefix, id))); err != nil {
			continue
		}
		chans = append(chans, ch)
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// stopStreams restores captured descriptors and closes the pipes.
func stopStreams(streams []*pipeStream) error {
	var first error
	for _, ps := range streams {
		if ps.fd >= 0 {
			if err := restoreFD(ps); err != nil && first == nil {
				first = err
			}
		} else {
			ps.w.Close()
		}
	}
	for _, ps := range streams {
		select {
		case <-ps.done:
		case <-time.After(time.Second):
		}
		ps.r.Close()
	}
	return first
}
