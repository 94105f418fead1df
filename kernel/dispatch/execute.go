package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/detlab/detlab/kernel/display"
	"github.com/detlab/detlab/kernel/session"
	"github.com/detlab/detlab/kernel/wire"
)

type executeRequest struct {
	Code            string            `json:"code"`
	Silent          bool              `json:"silent"`
	StoreHistory    *bool             `json:"store_history"`
	UserExpressions map[string]string `json:"user_expressions"`
	AllowStdin      bool              `json:"allow_stdin"`
	StopOnError     *bool             `json:"stop_on_error"`
}

// execute runs one execute_request. execution_count follows IPython: it is
// incremented by every execution that stores history (silent forces
// store_history off); execute_input is published unless silent, before any output.
func (d *Dispatcher) execute(ctx context.Context, m *wire.Message) {
	var req executeRequest
	if err := m.DecodeContent(&req); err != nil {
		d.logf("%v", err)
		c := requestError(err)
		c["execution_count"] = d.executionCount()
		d.reply(wire.Shell, m, "execute_reply", c)
		return
	}
	store := req.StoreHistory == nil || *req.StoreHistory
	stopOnError := req.StopOnError == nil || *req.StopOnError
	if req.Silent {
		store = false
	}
	d.mu.Lock()
	if store {
		d.count++
	}
	n := d.count
	cellCtx, cancel := context.WithCancel(ctx)
	d.cancelCell = cancel
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.cancelCell = nil
		d.mu.Unlock()
		cancel()
	}()

	if !req.Silent {
		d.publish(m, "execute_input", map[string]any{"code": req.Code, "execution_count": n})
	}
	out := d.newCellOutput(cellCtx, m, req.AllowStdin)
	res, err := d.run(cellCtx, req.Code, out)
	out.flush()

	var resultText *string
	if err == nil && res != nil && len(res.MIME) > 0 {
		if s, ok := res.MIME["text/plain"].(string); ok {
			resultText = &s
		}
		if !req.Silent {
			d.publish(m, "execute_result", map[string]any{
				"execution_count": n, "data": res.MIME, "metadata": orEmptyMap(res.Metadata),
			})
		}
	}
	if store {
		d.hist.add(n, req.Code, resultText)
	}
	if err != nil {
		ename, evalue, tb := errorParts(err)
		d.publish(m, "error", errorContent(ename, evalue, tb))
		c := errorContent(ename, evalue, tb)
		c["status"] = "error"
		c["execution_count"] = n
		d.reply(wire.Shell, m, "execute_reply", c)
		if stopOnError {
			d.abortQueued(ctx)
		}
		return
	}
	d.reply(wire.Shell, m, "execute_reply", map[string]any{
		"status": "ok", "execution_count": n, "payload": []any{},
		"user_expressions": d.userExpressions(cellCtx, req.UserExpressions),
	})
}

func (d *Dispatcher) executionCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count
}

// run calls the engine, turning a panic that escapes it into an error.
func (d *Dispatcher) run(ctx context.Context, code string, out session.Output) (res *display.Data, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, &session.ExecError{Name: "panic", Value: fmt.Sprint(r), Traceback: []string{fmt.Sprintf("panic: %v", r)}}
		}
	}()
	return d.eng.Execute(ctx, code, out)
}

// errorParts returns the error message fields for err: those of a
// *session.ExecError, or a generic "Error" with err's text.
func errorParts(err error) (name, value string, tb []string) {
	var ee *session.ExecError
	if errors.As(err, &ee) {
		tb = ee.Traceback
		if len(tb) == 0 {
			tb = []string{ee.Name + ": " + ee.Value}
		}
		return ee.Name, ee.Value, tb
	}
	return "Error", err.Error(), strings.Split(err.Error(), "\n")
}

// userExpressions evaluates each expression after a successful execution, as
// ipykernel does, with printed output discarded.
func (d *Dispatcher) userExpressions(ctx context.Context, exprs map[string]string) map[string]any {
	out := map[string]any{}
	for name, expr := range exprs {
		res, err := d.run(ctx, expr, discard{})
		switch {
		case err != nil:
			ename, evalue, tb := errorParts(err)
			c := errorContent(ename, evalue, tb)
			c["status"] = "error"
			out[name] = c
		case res == nil:
			out[name] = map[string]any{"status": "ok", "data": map[string]any{}, "metadata": map[string]any{}}
		default:
			out[name] = map[string]any{"status": "ok", "data": res.MIME, "metadata": orEmptyMap(res.Metadata)}
		}
	}
	return out
}

// abortQueued answers every shell request already received with status
// "aborted" (ipykernel's stop_on_error with its default timeout of 0): requests
// that arrive after the failed execution's reply run normally. Already
// received means queued when the abort starts: a front end that sends its
// next request as soon as it has the aborted replies must not see that one
// aborted too, however slowly this loop runs.
func (d *Dispatcher) abortQueued(ctx context.Context) {
	in := d.srv.Incoming(wire.Shell)
	for range len(in) {
		select {
		case m, ok := <-in:
			if !ok {
				return
			}
			if m.Type() == "shutdown_request" {
				d.serve(ctx, wire.Shell, m)
				return
			}
			d.publish(m, "status", map[string]any{"execution_state": "busy"})
			c := map[string]any{"status": "aborted"}
			if m.Type() == "execute_request" {
				c["execution_count"] = d.executionCount()
			}
			d.reply(wire.Shell, m, strings.TrimSuffix(m.Type(), "_request")+"_reply", c)
			d.publish(m, "status", map[string]any{"execution_state": "idle"})
		default:
			return
		}
	}
}

func orEmptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// discard is an Output that drops everything (user_expressions).
type discard struct{}

func (discard) Stream(name, text string) {}
func (discard) Display(display.Data)     {}
func (discard) Update(display.Data)      {}
func (discard) Clear(bool)               {}
func (discard) Input(string, bool) (string, error) {
	return "", errors.New("dispatch: no stdin for user expressions")
}
