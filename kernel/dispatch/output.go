package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/wire"
)

// ErrNoStdin is returned by Input when the front end did not allow stdin.
var ErrNoStdin = errors.New("dispatch: the front end does not accept input (allow_stdin is false)")

// cellOutput is the session.Output of one execute_request: it publishes on
// iopub with the request as parent. Printed text is batched: it is sent when
// FlushInterval has passed since the first unsent byte, when FlushSize bytes
// are waiting, when the stream name changes, and before any other output.
// It stays usable after its cell ended (goroutines may still print).
type cellOutput struct {
	d          *Dispatcher
	ctx        context.Context
	parent     *wire.Message
	allowStdin bool

	mu        sync.Mutex
	name      string
	buf       strings.Builder
	timer     *time.Timer
	total     int
	truncated bool
}

func (d *Dispatcher) newCellOutput(ctx context.Context, parent *wire.Message, allowStdin bool) *cellOutput {
	return &cellOutput{d: d, ctx: ctx, parent: parent, allowStdin: allowStdin}
}

// Stream queues text printed to stdout or stderr.
func (o *cellOutput) Stream(name, text string) {
	if text == "" {
		return
	}
	if name != "stderr" {
		name = "stdout"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if max := o.d.opts.MaxStreamBytes; max > 0 {
		if o.truncated {
			return
		}
		if o.total+len(text) > max {
			text = validPrefix(text, max-o.total)
			o.truncated = true
		}
		o.total += len(text)
	}
	if o.buf.Len() > 0 && o.name != name {
		o.flushLocked()
	}
	o.name = name
	o.buf.WriteString(text)
	if o.truncated {
		o.flushLocked()
		o.name = "stderr"
		o.buf.WriteString(fmt.Sprintf("\n[detlab: this cell printed more than %d bytes; further output is dropped]\n", o.d.opts.MaxStreamBytes))
		o.flushLocked()
		return
	}
	if o.buf.Len() >= o.d.opts.FlushSize {
		o.flushLocked()
		return
	}
	if o.timer == nil {
		o.timer = time.AfterFunc(o.d.opts.FlushInterval, o.flush)
	}
}

func (o *cellOutput) flush() {
	o.mu.Lock()
	o.flushLocked()
	o.mu.Unlock()
}

// flushLocked sends the waiting text in pieces of at most FlushSize bytes,
// cut at rune boundaries.
func (o *cellOutput) flushLocked() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	s := o.buf.String()
	o.buf.Reset()
	for len(s) > 0 {
		piece := s
		if len(piece) > o.d.opts.FlushSize {
			piece = validPrefix(s, o.d.opts.FlushSize)
			if piece == "" { // a single rune longer than FlushSize cannot happen; guard anyway
				piece = s
			}
		}
		s = s[len(piece):]
		o.d.publish(o.parent, "stream", map[string]any{"name": o.name, "text": piece})
	}
}

// validPrefix returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func validPrefix(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Display publishes display_data.
func (o *cellOutput) Display(d display.Data) {
	o.flush()
	o.d.publish(o.parent, "display_data", bundle(d))
}

// Update publishes update_display_data for d.DisplayID.
func (o *cellOutput) Update(d display.Data) {
	o.flush()
	o.d.publish(o.parent, "update_display_data", bundle(d))
}

// Clear publishes clear_output.
func (o *cellOutput) Clear(wait bool) {
	o.flush()
	o.d.publish(o.parent, "clear_output", map[string]any{"wait": wait})
}

// Input asks the front end for a line (input_request on stdin) and waits for
// the reply or the cell's interruption.
func (o *cellOutput) Input(prompt string, password bool) (string, error) {
	if !o.allowStdin {
		return "", ErrNoStdin
	}
	o.flush()
	d := o.d
	d.inputMu.Lock()
	defer d.inputMu.Unlock()
	ch := make(chan inputReply, 1)
	d.stdinMu.Lock()
	d.inputCh = ch
	d.stdinMu.Unlock()
	defer func() {
		d.stdinMu.Lock()
		d.inputCh = nil
		d.stdinMu.Unlock()
	}()
	req, err := wire.NewMessage(d.srv.Session(), "input_request", o.parent, map[string]any{"prompt": prompt, "password": password})
	if err != nil {
		return "", err
	}
	if err := d.srv.Send(wire.Stdin, req); err != nil {
		return "", fmt.Errorf("dispatch: input_request: %w", err)
	}
	for {
		select {
		case r := <-ch:
			if r.parentID != "" && r.parentID != req.Header.MsgID {
				d.logf("dispatch: input_reply for another request dropped")
				continue
			}
			return r.value, nil
		case <-o.ctx.Done():
			return "", fmt.Errorf("dispatch: input interrupted: %w", o.ctx.Err())
		}
	}
}

func bundle(d display.Data) map[string]any {
	transient := map[string]any{}
	if d.DisplayID != "" {
		transient["display_id"] = d.DisplayID
	}
	data := d.MIME
	if data == nil {
		data = map[string]any{}
	}
	return map[string]any{"data": data, "metadata": orEmptyMap(d.Metadata), "transient": transient}
}
