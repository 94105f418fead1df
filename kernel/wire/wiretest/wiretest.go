// Package wiretest is a fake Jupyter front end for tests: it connects real
// zmq4 sockets (DEALER for shell, control and stdin, SUB for iopub, REQ for
// the heartbeat) to a kernel and speaks the signed message format.
//
//	c, err := wiretest.Dial(ctx, srv.Info())
//	defer c.Close()
//	c.WaitReady(5 * time.Second)
//	reply, outputs, err := c.Execute(`fmt.Println("hi")`, nil, 5*time.Second)
package wiretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/detlab/detlab/kernel/wire"
)

// Client is a front end connected to one kernel.
type Client struct {
	Session string
	signer  wire.Signer
	socks   map[wire.Channel]zmq4.Socket
	in      map[wire.Channel]chan *wire.Message
	cancel  context.CancelFunc
}

// Dial connects to the kernel described by info.
func Dial(ctx context.Context, info wire.ConnectionInfo) (*Client, error) {
	signer, err := wire.NewSigner(info.SignatureScheme, info.Key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Client{Session: wire.NewID(), signer: signer, cancel: cancel,
		socks: map[wire.Channel]zmq4.Socket{}, in: map[wire.Channel]chan *wire.Message{}}
	id := zmq4.WithID(zmq4.SocketIdentity(c.Session))
	// zmq4 retries a refused dial every 250ms by default; a kernel that is
	// still starting would then look 250ms slower than it is.
	// Up to 2000 tries: 10s for a kernel to start listening.
	retry, tries := zmq4.WithDialerRetry(5*time.Millisecond), zmq4.WithDialerMaxRetries(2000)
	c.socks[wire.Shell] = zmq4.NewDealer(ctx, id, retry, tries)
	c.socks[wire.Control] = zmq4.NewDealer(ctx, id, retry, tries)
	c.socks[wire.Stdin] = zmq4.NewDealer(ctx, id, retry, tries)
	c.socks[wire.IOPub] = zmq4.NewSub(ctx, retry, tries)
	c.socks[wire.Heartbeat] = zmq4.NewReq(ctx, retry, tries)
	ports := map[wire.Channel]int{wire.Shell: info.ShellPort, wire.Control: info.ControlPort,
		wire.Stdin: info.StdinPort, wire.IOPub: info.IOPubPort, wire.Heartbeat: info.HBPort}
	for ch, port := range ports {
		if err := c.socks[ch].Dial(fmt.Sprintf("tcp://%s:%d", info.IP, port)); err != nil {
			c.Close()
			return nil, fmt.Errorf("wiretest: dial %s: %w", ch, err)
		}
	}
	if err := c.socks[wire.IOPub].SetOption(zmq4.OptionSubscribe, ""); err != nil {
		c.Close()
		return nil, fmt.Errorf("wiretest: subscribe: %w", err)
	}
	for _, ch := range []wire.Channel{wire.Shell, wire.Control, wire.Stdin, wire.IOPub} {
		c.in[ch] = make(chan *wire.Message, 1024)
		go c.read(ch)
	}
	return c, nil
}

func (c *Client) read(ch wire.Channel) {
	for {
		zm, err := c.socks[ch].Recv()
		if err != nil {
			close(c.in[ch])
			return
		}
		m, err := wire.Decode(zm.Frames, c.signer)
		if err != nil {
			continue
		}
		c.in[ch] <- m
	}
}

// Close closes the sockets.
func (c *Client) Close() {
	for _, s := range c.socks {
		s.Close()
	}
	c.cancel()
}

// Request sends a request of msgType with content on ch and returns it (its
// Header.MsgID identifies the replies).
func (c *Client) Request(ch wire.Channel, msgType string, content any) (*wire.Message, error) {
	m, err := wire.NewMessage(c.Session, msgType, nil, content)
	if err != nil {
		return nil, err
	}
	return m, c.SendMessage(ch, m)
}

// SendMessage signs and sends m on ch.
func (c *Client) SendMessage(ch wire.Channel, m *wire.Message) error {
	m.Identities = nil
	return c.SendFrames(ch, wire.Encode(m, c.signer))
}

// SendFrames sends raw frames on ch, for tests of malformed or unsigned input.
func (c *Client) SendFrames(ch wire.Channel, frames [][]byte) error {
	if err := c.socks[ch].SendMulti(zmq4.NewMsgFrom(frames...)); err != nil {
		return fmt.Errorf("wiretest: send on %s: %w", ch, err)
	}
	return nil
}

// Signer returns the signer the client uses.
func (c *Client) Signer() wire.Signer { return c.signer }

// ErrTimeout is returned when no message arrives in time.
var ErrTimeout = errors.New("wiretest: timeout")

// Recv returns the next message on ch (shell, control, stdin or iopub).
func (c *Client) Recv(ch wire.Channel, timeout time.Duration) (*wire.Message, error) {
	select {
	case m, ok := <-c.in[ch]:
		if !ok {
			return nil, fmt.Errorf("wiretest: %s closed", ch)
		}
		return m, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("%w waiting on %s", ErrTimeout, ch)
	}
}

// Reply waits for the reply to req on ch, skipping replies to other requests.
func (c *Client) Reply(ch wire.Channel, req *wire.Message, timeout time.Duration) (*wire.Message, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := c.Recv(ch, time.Until(deadline))
		if err != nil {
			return nil, fmt.Errorf("%s reply: %w", req.Type(), err)
		}
		if ParentID(m) == req.Header.MsgID {
			return m, nil
		}
	}
}

// Outputs collects the iopub messages caused by req up to and including its
// idle status.
func (c *Client) Outputs(req *wire.Message, timeout time.Duration) ([]*wire.Message, error) {
	deadline := time.Now().Add(timeout)
	var out []*wire.Message
	for {
		m, err := c.Recv(wire.IOPub, time.Until(deadline))
		if err != nil {
			return out, fmt.Errorf("%s outputs: %w", req.Type(), err)
		}
		if ParentID(m) != req.Header.MsgID {
			continue
		}
		out = append(out, m)
		if m.Type() == "status" && State(m) == "idle" {
			return out, nil
		}
	}
}

// Execute runs code and returns the execute_reply and the iopub messages of
// the request (busy ... idle). opts overrides fields of the request content.
func (c *Client) Execute(code string, opts map[string]any, timeout time.Duration) (*wire.Message, []*wire.Message, error) {
	content := map[string]any{"code": code, "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true}
	for k, v := range opts {
		content[k] = v
	}
	req, err := c.Request(wire.Shell, "execute_request", content)
	if err != nil {
		return nil, nil, err
	}
	reply, err := c.Reply(wire.Shell, req, timeout)
	if err != nil {
		return nil, nil, err
	}
	outs, err := c.Outputs(req, timeout)
	return reply, outs, err
}

// WaitReady sends kernel_info requests until one is answered and iopub
// delivers its status, so that no later publication is lost to the PUB/SUB
// subscription race.
func (c *Client) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, err := c.Request(wire.Shell, "kernel_info_request", map[string]any{})
		if err != nil {
			return err
		}
		if _, err := c.Reply(wire.Shell, req, time.Until(deadline)); err != nil {
			return err
		}
		for {
			m, err := c.Recv(wire.IOPub, 200*time.Millisecond)
			if err != nil {
				break
			}
			if ParentID(m) == req.Header.MsgID && m.Type() == "status" && State(m) == "idle" {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: kernel not ready", ErrTimeout)
}

// Ping sends a heartbeat and waits for its echo.
func (c *Client) Ping(timeout time.Duration) error {
	hb := c.socks[wire.Heartbeat]
	done := make(chan error, 1)
	go func() {
		if err := hb.Send(zmq4.NewMsgString("ping")); err != nil {
			done <- err
			return
		}
		m, err := hb.Recv()
		if err == nil && string(m.Bytes()) != "ping" {
			err = fmt.Errorf("wiretest: heartbeat echoed %q", m.Bytes())
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("%w: heartbeat", ErrTimeout)
	}
}

// ParentID returns the msg_id of m's parent header ("" if none).
func ParentID(m *wire.Message) string {
	var p struct {
		MsgID string `json:"msg_id"`
	}
	_ = json.Unmarshal(m.ParentHeader, &p)
	return p.MsgID
}

// State returns the execution_state of a status message.
func State(m *wire.Message) string {
	var c struct {
		ExecutionState string `json:"execution_state"`
	}
	_ = json.Unmarshal(m.Content, &c)
	return c.ExecutionState
}

// Content decodes m's content into a map.
func Content(m *wire.Message) map[string]any {
	var c map[string]any
	_ = json.Unmarshal(m.Content, &c)
	return c
}
