//go:build !linux

package session

import (
	"errors"
	"os"
)

// fdCapture is only implemented on Linux.
type fdCapture struct{ origErr *os.File }

func startCapture(s *Session) (*fdCapture, error) {
	return nil, errors.New("capturing file descriptors is only supported on Linux")
}

func (c *fdCapture) sync()       {}
func (c *fdCapture) stop() error { return nil }
