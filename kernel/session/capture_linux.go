//go:build linux

package session

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// fdCapture redirects file descriptors 1 and 2 into pipes whose readers
// forward everything to the session's current output, so that what compiled
// code and goroutines print reaches the notebook.
type fdCapture struct {
	s       *Session
	origOut *os.File // the process's stdout before capture
	origErr *os.File // the process's stderr before capture: the kernel's log
	streams []*captured
}

type captured struct {
	name  string
	fd    int
	saved int
	r     *os.File
	file  *os.File // os.Stdout or os.Stderr, now writing into the pipe
	mu    sync.Mutex
	next  int
	wait  map[int]chan struct{}
	done  chan struct{}
}

const syncPrefix = "\x00detlab-sync-"

func startCapture(s *Session) (*fdCapture, error) {
	c := &fdCapture{s: s}
	for _, x := range []struct {
		name string
		fd   int
		file *os.File
	}{{"stdout", 1, os.Stdout}, {"stderr", 2, os.Stderr}} {
		saved, err := syscall.Dup(x.fd)
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("dup %d: %w", x.fd, err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			syscall.Close(saved)
			c.stop()
			return nil, err
		}
		if err := syscall.Dup3(int(w.Fd()), x.fd, 0); err != nil {
			syscall.Close(saved)
			r.Close()
			w.Close()
			c.stop()
			return nil, fmt.Errorf("dup3 onto %d: %w", x.fd, err)
		}
		w.Close()
		cs := &captured{name: x.name, fd: x.fd, saved: saved, r: r, file: x.file, wait: map[int]chan struct{}{}, done: make(chan struct{})}
		c.streams = append(c.streams, cs)
		go c.read(cs)
	}
	c.origOut = os.NewFile(uintptr(c.streams[0].saved), "stdout")
	c.origErr = os.NewFile(uintptr(c.streams[1].saved), "stderr")
	// A fatal error of the runtime must reach the log, not a pipe nobody
	// reads any more.
	_ = debug.SetCrashOutput(c.origErr, debug.CrashOptions{})
	return c, nil
}

// read forwards one pipe to the session, handling sync markers.
func (c *fdCapture) read(cs *captured) {
	defer close(cs.done)
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := cs.r.Read(buf)
		pending = append(pending, buf[:n]...)
		pending = c.forward(cs, pending)
		if err != nil {
			if len(pending) > 0 {
				c.s.stream(cs.name, string(pending))
			}
			return
		}
	}
}

// forward sends the complete part of p and returns what must wait for more
// bytes: a possible start of a sync marker or an incomplete UTF-8 sequence.
func (c *fdCapture) forward(cs *captured, p []byte) []byte {
	for {
		i := bytes.Index(p, []byte(syncPrefix))
		if i < 0 {
			break
		}
		j := bytes.IndexByte(p[i+len(syncPrefix):], 0)
		if j < 0 {
			c.s.stream(cs.name, string(p[:i]))
			return append([]byte(nil), p[i:]...)
		}
		c.s.stream(cs.name, string(p[:i]))
		var id int
		fmt.Sscan(string(p[i+len(syncPrefix):i+len(syncPrefix)+j]), &id)
		c.s.flushStream()
		cs.mu.Lock()
		if ch, ok := cs.wait[id]; ok {
			close(ch)
			delete(cs.wait, id)
		}
		cs.mu.Unlock()
		p = p[i+len(syncPrefix)+j+1:]
	}
	keep := 0
	// A trailing partial marker.
	if k := bytes.LastIndexByte(p, 0); k >= 0 && bytes.HasPrefix([]byte(syncPrefix), p[k:]) {
		keep = len(p) - k
	}
	// A trailing incomplete rune.
	end := len(p) - keep
	for back := 1; back <= 3 && back <= end; back++ {
		r := p[end-back]
		if r < 0x80 {
			break
		}
		if utf8.RuneStart(r) {
			if !utf8.FullRune(p[end-back : end]) {
				keep += back
			}
			break
		}
	}
	c.s.stream(cs.name, string(p[:len(p)-keep]))
	return append([]byte(nil), p[len(p)-keep:]...)
}

// sync waits until everything written to the captured descriptors so far
// has been forwarded.
func (c *fdCapture) sync() {
	var chans []chan struct{}
	for _, cs := range c.streams {
		cs.mu.Lock()
		cs.next++
		id := cs.next
		ch := make(chan struct{})
		cs.wait[id] = ch
		cs.mu.Unlock()
		if _, err := syscall.Write(cs.fd, []byte(fmt.Sprintf("%s%d\x00", syncPrefix, id))); err != nil {
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

// stop restores the original descriptors.
func (c *fdCapture) stop() error {
	var first error
	for _, cs := range c.streams {
		if err := syscall.Dup3(cs.saved, cs.fd, 0); err != nil && first == nil {
			first = err
		}
	}
	for _, cs := range c.streams {
		select {
		case <-cs.done:
		case <-time.After(time.Second):
		}
		cs.r.Close()
	}
	return first
}
