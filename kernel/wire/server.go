package wire

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Channel names one of the kernel's sockets.
type Channel int

// The kernel's channels.
const (
	Shell Channel = iota
	Control
	Stdin
	IOPub
	Heartbeat
)

// IOPubHWM is the most iopub messages queued for sending; beyond it new
// publications are dropped (libzmq's PUB behaviour, with a larger mark).
const IOPubHWM = 10000

var channelNames = [...]string{"shell", "control", "stdin", "iopub", "hb"}

// String returns the protocol's name of the channel.
func (c Channel) String() string {
	if c < 0 || int(c) >= len(channelNames) {
		return fmt.Sprintf("channel(%d)", int(c))
	}
	return channelNames[c]
}

// Server holds the five listening sockets of a kernel. Incoming messages on
// shell, control and stdin are decoded and verified by one reader goroutine per
// socket; bad messages are logged and dropped. Sends are safe for concurrent use.
type Server struct {
	info    ConnectionInfo
	signer  Signer
	session string
	logf    func(format string, args ...any)

	cancel  context.CancelFunc
	socks   [5]zmq4.Socket
	sendMu  [5]sync.Mutex
	in      [3]chan *Message
	done    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once
}

// Listen binds the five sockets of info. A port of 0 picks a free port; Info
// reports the ports in use. logger may be nil (log.Default).
func Listen(ctx context.Context, info ConnectionInfo, logger *log.Logger) (*Server, error) {
	signer, err := NewSigner(info.SignatureScheme, info.Key)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = log.Default()
	}
	if info.Transport == "" {
		info.Transport = "tcp"
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{info: info, signer: signer, session: NewID(), logf: logger.Printf, cancel: cancel, done: make(chan struct{})}
	s.socks[Shell] = zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("shell")))
	s.socks[Control] = zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("control")))
	s.socks[Stdin] = zmq4.NewRouter(ctx, zmq4.WithID(zmq4.SocketIdentity("stdin")))
	s.socks[IOPub] = zmq4.NewPub(ctx)
	// zmq4's PUB queue is unbounded by default; a front end that stops
	// reading would make the kernel's memory grow without end.
	if err := s.socks[IOPub].SetOption(zmq4.OptionHWM, IOPubHWM); err != nil {
		cancel()
		return nil, fmt.Errorf("wire: iopub high-water mark: %w", err)
	}
	s.socks[Heartbeat] = zmq4.NewRep(ctx)
	ports := []*int{&s.info.ShellPort, &s.info.ControlPort, &s.info.StdinPort, &s.info.IOPubPort, &s.info.HBPort}
	for ch, p := range ports {
		if err := s.socks[ch].Listen(info.endpoint(*p)); err != nil {
			s.Close()
			return nil, fmt.Errorf("wire: listen %s on %s: %w", Channel(ch), info.endpoint(*p), err)
		}
		if a, ok := s.socks[ch].Addr().(*net.TCPAddr); ok {
			*p = a.Port
		}
	}
	for ch := range s.in {
		s.in[ch] = make(chan *Message, 64)
		s.wg.Add(1)
		go s.read(Channel(ch))
	}
	s.wg.Add(1)
	go s.heartbeat()
	return s, nil
}

// Info returns the connection info with the ports actually bound.
func (s *Server) Info() ConnectionInfo { return s.info }

// Session returns the kernel's session id, used in every header it sends.
func (s *Server) Session() string { return s.session }

// Signer returns the signer in use.
func (s *Server) Signer() Signer { return s.signer }

// Incoming returns the channel of verified messages from shell, control or stdin.
// It is closed when the server closes.
func (s *Server) Incoming(ch Channel) <-chan *Message {
	if ch < Shell || ch > Stdin {
		panic("wire: Incoming on " + ch.String())
	}
	return s.in[ch]
}

// Done is closed when the server is closed.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) read(ch Channel) {
	defer s.wg.Done()
	defer close(s.in[ch])
	for {
		zm, err := s.socks[ch].Recv()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			s.logf("wire: %s: receive: %v", ch, err)
			time.Sleep(10 * time.Millisecond) // never spin on a persistent error
			continue
		}
		m, err := Decode(zm.Frames, s.signer)
		if err != nil {
			s.logf("wire: %s: dropped message: %v", ch, err)
			continue
		}
		select {
		case s.in[ch] <- m:
		case <-s.done:
			return
		}
	}
}

func (s *Server) heartbeat() {
	defer s.wg.Done()
	for {
		m, err := s.socks[Heartbeat].Recv()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			continue
		}
		if err := s.socks[Heartbeat].Send(m); err != nil {
			s.logf("wire: hb: %v", err)
		}
	}
}

// Send signs and sends m on ch.
func (s *Server) Send(ch Channel, m *Message) error {
	frames := Encode(m, s.signer)
	s.sendMu[ch].Lock()
	defer s.sendMu[ch].Unlock()
	if err := s.socks[ch].SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
		return fmt.Errorf("wire: send %s on %s: %w", m.Header.MsgType, ch, err)
	}
	return nil
}

// Reply sends a message of msgType with content on ch, addressed to the sender
// of req and carrying req's header as parent.
func (s *Server) Reply(ch Channel, req *Message, msgType string, content any) error {
	m, err := NewMessage(s.session, msgType, req, content)
	if err != nil {
		return err
	}
	return s.Send(ch, m)
}

// Publish sends a message of msgType on iopub with parent (nil for none).
func (s *Server) Publish(parent *Message, msgType string, content any) error {
	m, err := NewMessage(s.session, msgType, parent, content)
	if err != nil {
		return err
	}
	m.Identities = [][]byte{[]byte("kernel." + s.session + "." + msgType)}
	return s.Send(IOPub, m)
}

// Close closes every socket and waits for the reader goroutines.
func (s *Server) Close() error {
	var first error
	s.closeMu.Do(func() {
		close(s.done)
		for _, sk := range s.socks {
			if sk == nil {
				continue
			}
			if err := sk.Close(); err != nil && first == nil {
				first = err
			}
		}
		s.cancel()
		s.wg.Wait()
	})
	if first != nil {
		return fmt.Errorf("wire: close: %w", first)
	}
	return nil
}
