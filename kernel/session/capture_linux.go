//go:build linux

package session

import (
	"os"
	"runtime/debug"
	"syscall"
)

// captureFD makes descriptor fd (1 or 2) write into ps's pipe; ps.w becomes
// os.Stdout or os.Stderr, which now lead there.
func captureFD(ps *pipeStream, fd int) error {
	saved, err := syscall.Dup(fd)
	if err != nil {
		return err
	}
	if err := syscall.Dup3(int(ps.w.Fd()), fd, 0); err != nil {
		syscall.Close(saved)
		return err
	}
	ps.w.Close()
	ps.fd, ps.save = fd, saved
	// One File owns the saved descriptor (a second one's finalizer would
	// close it under us).
	ps.saved = os.NewFile(uintptr(saved), "original-"+ps.name)
	if fd == 1 {
		ps.w = os.Stdout
	} else {
		ps.w = os.Stderr
		// A fatal error of the runtime must reach the log, not a pipe
		// nobody reads any more.
		_ = debug.SetCrashOutput(ps.saved, debug.CrashOptions{})
	}
	return nil
}

// restoreFD puts the original descriptor back, which also closes the
// pipe's writing end so that the reader ends.
func restoreFD(ps *pipeStream) error {
	return syscall.Dup3(ps.save, ps.fd, 0)
}

// originalStderr is the process's standard error before capture.
func originalStderr(streams []*pipeStream) *os.File {
	for _, ps := range streams {
		if ps.fd == 2 {
			return ps.saved
		}
	}
	return os.Stderr
}
