package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/detlab/detlab/kernel/display"
)

// helpText is what %help prints.
const helpText = `detlab: Go notebooks on the yaegi interpreter.

Cells mix imports, declarations and statements in any order. Top-level
x := ... creates a variable later cells see. A final expression is shown
as the cell's result; plots, images and values with HTML, Markdown, PNG,
SVG or JSON methods render richly. Redefining a type or method starts a
fresh interpreter that keeps your declarations and the variables whose
types did not change (the kernel names any it drops).

Every cell sees ctx, a context.Context cancelled by the interrupt button:
pass it to long-running library calls.

Magics (lines at the top of a cell):
  !command          run a shell command, streaming its output
  %env              list the environment
  %env NAME         print one variable
  %env NAME=VALUE   set a variable (also for shell commands)
  %time             time the rest of the cell
  %reset            drop all declarations and variables
  %help             this text

Packages: the Go standard library, gorgonia.org/gorgonia and
gorgonia.org/tensor, gonum mat/stat/floats, gonum.org/v1/plot and its
plotter, plotutil, vg, vgimg, vgsvg and draw packages,
github.com/detlab/detlab/kernel/display and the detlab lib/ and plots
packages. Tab completes, Shift-Tab shows documentation.
`

// execute handles the magic lines at the top of code, then runs the rest.
func (s *Session) execute(ctx context.Context, code string) (*display.Data, error) {
	lines := strings.SplitAfter(code, "\n")
	i := 0
	for ; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "%") {
			break
		}
		if strings.HasPrefix(t, "!") {
			s.shell(ctx, strings.TrimSpace(t[1:]))
			if ctx.Err() != nil {
				return nil, &ExecError{Name: "Interrupted", Value: "the cell was interrupted", Traceback: []string{"Interrupted: the cell was interrupted"}}
			}
			continue
		}
		name, arg, _ := strings.Cut(t[1:], " ")
		arg = strings.TrimSpace(arg)
		switch name {
		case "help":
			s.stream("stdout", helpText)
		case "env":
			if err := s.env(arg); err != nil {
				return nil, err
			}
		case "reset":
			if err := s.reset(); err != nil {
				return nil, err
			}
			s.stream("stderr", "detlab: reset: all declarations and variables dropped\n")
		case "time":
			rest := strings.Repeat("\n", i+1) + strings.Join(lines[i+1:], "")
			if arg != "" {
				rest = strings.Repeat("\n", i) + arg + "\n" + strings.Join(lines[i+1:], "")
			}
			start := time.Now()
			d, err := s.execute(ctx, rest)
			s.stream("stdout", fmt.Sprintf("time: %s\n", roundDuration(time.Since(start))))
			return d, err
		default:
			msg := fmt.Sprintf("unknown magic %%%s; %%help lists them", name)
			return nil, &ExecError{Name: "MagicError", Value: msg, Traceback: []string{"MagicError: " + msg, fmt.Sprintf("  cell line %d", i+1)}}
		}
	}
	if i == 0 {
		return s.run(ctx, code)
	}
	rest := strings.Repeat("\n", i) + strings.Join(lines[i:], "")
	if strings.TrimSpace(rest) == "" {
		return nil, nil
	}
	return s.run(ctx, rest)
}

// roundDuration keeps three significant digits.
func roundDuration(d time.Duration) time.Duration {
	for r := time.Duration(1); r < d; r *= 10 {
		if d/r < 1000 {
			return d.Round(r)
		}
	}
	return d
}

// shell runs a command line with /bin/sh, streaming its output; a non-zero
// exit is reported on stderr without failing the cell.
func (s *Session) shell(ctx context.Context, line string) {
	if line == "" {
		return
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	cmd.Stdout = streamWriter{s, "stdout"}
	cmd.Stderr = streamWriter{s, "stderr"}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		s.stream("stderr", "detlab: command interrupted\n")
	case errors.As(err, &ee):
		s.stream("stderr", fmt.Sprintf("detlab: command exited with status %d\n", ee.ExitCode()))
	default:
		s.stream("stderr", fmt.Sprintf("detlab: %v\n", err))
	}
}

// env implements %env.
func (s *Session) env(arg string) error {
	if arg == "" {
		env := os.Environ()
		sort.Strings(env)
		s.stream("stdout", strings.Join(env, "\n")+"\n")
		return nil
	}
	name, val, set := strings.Cut(arg, "=")
	if !set {
		name, val, set = strings.Cut(arg, " ")
	}
	name, val = strings.TrimSpace(name), strings.TrimSpace(val)
	if name == "" || strings.ContainsAny(name, " \t=") {
		msg := fmt.Sprintf("%%env: bad variable name %q", name)
		return &ExecError{Name: "MagicError", Value: msg, Traceback: []string{"MagicError: " + msg}}
	}
	if !set {
		v, ok := os.LookupEnv(name)
		if !ok {
			s.stream("stderr", fmt.Sprintf("%s is not set\n", name))
			return nil
		}
		s.stream("stdout", v+"\n")
		return nil
	}
	if err := os.Setenv(name, val); err != nil {
		msg := fmt.Sprintf("%%env: %v", err)
		return &ExecError{Name: "MagicError", Value: msg, Traceback: []string{"MagicError: " + msg}}
	}
	s.stream("stdout", fmt.Sprintf("env: %s=%s\n", name, val))
	return nil
}

// reset drops all state into a fresh generation.
func (s *Session) reset() error {
	g, err := s.newGeneration()
	if err != nil {
		return &ExecError{Name: "InternalError", Value: err.Error(), Traceback: []string{err.Error()}}
	}
	s.gen = g
	s.genCells = 0
	s.imports, s.decls, s.vars = nil, nil, nil
	return nil
}
