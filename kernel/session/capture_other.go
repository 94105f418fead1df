//go:build !linux

package session

import (
	"errors"
	"os"
)

func captureFD(ps *pipeStream, fd int) error {
	return errors.New("capturing file descriptors is only supported on Linux")
}

func restoreFD(ps *pipeStream) error { return nil }

func originalStderr(streams []*pipeStream) *os.File { return os.Stderr }
