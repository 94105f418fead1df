// Package dispatch is the logic of the conversation between a Jupyter front end
// and the kernel: it routes each message type to its handler, publishes the
// busy/idle status around every request, numbers executions, keeps the input
// history, runs shell and control requests concurrently (so interrupt and
// shutdown are answered while a cell runs), aborts queued executions after an
// error, and batches what cells print into stream messages.
//
// It knows neither the encoding nor the sockets (kernel/wire) nor how Go is
// run (kernel/session, reached through the Engine interface):
//
//	srv, _ := wire.Listen(ctx, info, logger)
//	d := dispatch.New(srv, sess, dispatch.Options{Version: "0.1.0"})
//	restart, err := d.Run(ctx)
package dispatch

import (
	"context"
	"log"
	"runtime/debug"
	"sync"
	"time"

	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/session"
	"github.com/detlab/detlab/kernel/wire"
)

// Engine runs code; *session.Session implements it.
type Engine interface {
	Execute(ctx context.Context, code string, out session.Output) (*display.Data, error)
	Complete(code string, cursor int) (matches []string, start, end int)
	Inspect(code string, cursor int, detail int) (text string, found bool)
	IsComplete(code string) (status, indent string)
	Banner() string
}

// Options tune a Dispatcher. The zero value works.
type Options struct {
	// Version is kernel_info's implementation_version ("dev" if empty).
	Version string
	// HistoryFile, when set, keeps the input history across kernel starts as
	// JSON lines (one session number per start). Empty keeps it in memory only.
	HistoryFile string
	// Logger receives protocol problems (bad messages, unknown types). Default log.Default().
	Logger *log.Logger
	// FlushInterval is the longest time printed text waits before it is sent
	// as a stream message. Default 50ms.
	FlushInterval time.Duration
	// FlushSize is the most text one stream message carries; more is sent at
	// once in pieces of this size. Default 64 KiB.
	FlushSize int
	// MaxStreamBytes caps what one execution may print; beyond it, text is
	// dropped and a notice is printed to stderr once. Default 32 MiB; -1 = no cap.
	MaxStreamBytes int
	// ShutdownGrace is how long Run waits for a running cell to stop after a
	// shutdown request before returning anyway. Default 2s.
	ShutdownGrace time.Duration
}

// Dispatcher serves one kernel's messages. Create it with New and call Run once.
type Dispatcher struct {
	srv  *wire.Server
	eng  Engine
	opts Options
	logf func(string, ...any)

	hist *history

	mu         sync.Mutex
	count      int                // execution_count
	cancelCell context.CancelFunc // cancels the running cell; nil when idle

	inputMu sync.Mutex      // one input_request at a time
	stdinMu sync.Mutex      // guards inputCh
	inputCh chan inputReply // receives input_reply for the pending request

	stop     chan struct{}
	stopOnce sync.Once
	restart  bool
}

type inputReply struct {
	parentID string
	value    string
}

// New returns a Dispatcher serving srv with eng.
func New(srv *wire.Server, eng Engine, opts Options) *Dispatcher {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = log.Default()
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.FlushSize <= 0 {
		opts.FlushSize = 64 << 10
	}
	if opts.MaxStreamBytes == 0 {
		opts.MaxStreamBytes = 32 << 20
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 2 * time.Second
	}
	d := &Dispatcher{srv: srv, eng: eng, opts: opts, logf: opts.Logger.Printf, stop: make(chan struct{})}
	d.hist = newHistory(opts.HistoryFile, d.logf)
	return d
}

// Run serves until a shutdown request, ctx's end or the server's close. It
// reports whether the front end asked for a restart (the process should exit
// either way; the front end starts a new one).
func (d *Dispatcher) Run(ctx context.Context) (restart bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.publish(nil, "status", map[string]any{"execution_state": "starting"})
	go d.stdinLoop(ctx)
	go d.controlLoop(ctx)
	shellDone := make(chan struct{})
	go func() {
		defer close(shellDone)
		d.shellLoop(ctx)
	}()
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case <-d.stop:
	case <-d.srv.Done():
	case <-shellDone:
	}
	cancel()
	d.interrupt()
	select {
	case <-shellDone:
	case <-time.After(d.opts.ShutdownGrace):
		d.logf("dispatch: running cell did not stop within %v of shutdown", d.opts.ShutdownGrace)
	}
	if cerr := d.hist.close(); cerr != nil {
		d.logf("%v", cerr)
	}
	d.mu.Lock()
	restart = d.restart
	d.mu.Unlock()
	return restart, err
}

func (d *Dispatcher) shellLoop(ctx context.Context) {
	in := d.srv.Incoming(wire.Shell)
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.stop:
			return
		case m, ok := <-in:
			if !ok {
				return
			}
			d.serve(ctx, wire.Shell, m)
		}
	}
}

func (d *Dispatcher) controlLoop(ctx context.Context) {
	in := d.srv.Incoming(wire.Control)
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-in:
			if !ok {
				return
			}
			d.serve(ctx, wire.Control, m)
		}
	}
}

func (d *Dispatcher) stdinLoop(ctx context.Context) {
	in := d.srv.Incoming(wire.Stdin)
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-in:
			if !ok {
				return
			}
			if m.Type() != "input_reply" {
				d.logf("dispatch: stdin: unexpected %q dropped", m.Type())
				continue
			}
			var c struct {
				Value string `json:"value"`
			}
			if err := m.DecodeContent(&c); err != nil {
				d.logf("dispatch: %v", err)
				continue
			}
			var p struct {
				MsgID string `json:"msg_id"`
			}
			_ = jsonUnmarshal(m.ParentHeader, &p)
			d.stdinMu.Lock()
			ch := d.inputCh
			d.stdinMu.Unlock()
			if ch == nil {
				d.logf("dispatch: input_reply with no pending input_request dropped")
				continue
			}
			select {
			case ch <- inputReply{parentID: p.MsgID, value: c.Value}:
			default:
				d.logf("dispatch: duplicate input_reply dropped")
			}
		}
	}
}

// serve runs one request between busy and idle status messages. A panic in a
// handler is logged; the kernel keeps serving.
func (d *Dispatcher) serve(ctx context.Context, ch wire.Channel, m *wire.Message) {
	d.publish(m, "status", map[string]any{"execution_state": "busy"})
	defer d.publish(m, "status", map[string]any{"execution_state": "idle"})
	defer func() {
		if r := recover(); r != nil {
			d.logf("dispatch: panic handling %s on %s: %v\n%s", m.Type(), ch, r, debug.Stack())
		}
	}()
	switch m.Type() {
	case "kernel_info_request":
		d.reply(ch, m, "kernel_info_reply", d.kernelInfo())
	case "shutdown_request":
		d.shutdown(ch, m)
	case "interrupt_request":
		d.interrupt()
		d.reply(ch, m, "interrupt_reply", map[string]any{"status": "ok"})
	default:
		if ch == wire.Control {
			d.logf("dispatch: control: unknown message type %q ignored", m.Type())
			return
		}
		d.serveShell(ctx, m)
	}
}

func (d *Dispatcher) serveShell(ctx context.Context, m *wire.Message) {
	switch m.Type() {
	case "execute_request":
		d.execute(ctx, m)
	case "complete_request":
		d.complete(m)
	case "inspect_request":
		d.inspect(m)
	case "is_complete_request":
		d.isComplete(m)
	case "history_request":
		d.history(m)
	case "comm_info_request":
		d.reply(wire.Shell, m, "comm_info_reply", map[string]any{"status": "ok", "comms": map[string]any{}})
	case "connect_request":
		ci := d.srv.Info()
		d.reply(wire.Shell, m, "connect_reply", map[string]any{"status": "ok",
			"shell_port": ci.ShellPort, "iopub_port": ci.IOPubPort, "stdin_port": ci.StdinPort,
			"hb_port": ci.HBPort, "control_port": ci.ControlPort})
	case "comm_open", "comm_msg", "comm_close":
		// No comm targets are registered; like ipykernel, ignore them.
		d.logf("dispatch: %s ignored: no comm targets", m.Type())
	default:
		// ipykernel logs unknown types and sends no reply.
		d.logf("dispatch: unknown message type %q ignored", m.Type())
	}
}

// shutdown answers a shutdown_request (on its channel and on iopub, as
// ipykernel does), cancels the running cell and ends Run.
func (d *Dispatcher) shutdown(ch wire.Channel, m *wire.Message) {
	var c struct {
		Restart bool `json:"restart"`
	}
	if err := m.DecodeContent(&c); err != nil {
		d.logf("%v", err)
	}
	content := map[string]any{"status": "ok", "restart": c.Restart}
	d.reply(ch, m, "shutdown_reply", content)
	d.publish(m, "shutdown_reply", content)
	d.mu.Lock()
	d.restart = c.Restart
	d.mu.Unlock()
	d.interrupt()
	d.stopOnce.Do(func() { close(d.stop) })
}

// interrupt cancels the running cell's context, if a cell runs.
func (d *Dispatcher) interrupt() {
	d.mu.Lock()
	if d.cancelCell != nil {
		d.cancelCell()
	}
	d.mu.Unlock()
}

func (d *Dispatcher) reply(ch wire.Channel, req *wire.Message, msgType string, content any) {
	if err := d.srv.Reply(ch, req, msgType, content); err != nil {
		d.logf("dispatch: %v", err)
	}
}

func (d *Dispatcher) publish(parent *wire.Message, msgType string, content any) {
	if err := d.srv.Publish(parent, msgType, content); err != nil {
		d.logf("dispatch: %v", err)
	}
}

func errorContent(name, value string, tb []string) map[string]any {
	if tb == nil {
		tb = []string{}
	}
	return map[string]any{"ename": name, "evalue": value, "traceback": tb}
}

func requestError(err error) map[string]any {
	c := errorContent("BadRequest", err.Error(), nil)
	c["status"] = "error"
	return c
}
