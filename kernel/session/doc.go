// Package session runs notebook cells on the yaegi Go interpreter
// (github.com/traefik/yaegi v0.16.1) with the habits of a notebook. The
// protocol side (kernel/dispatch, kernel/nbrun) creates one Session, calls
// Execute for each cell with an Output that forwards streams, displays and
// input requests to the front end, and Complete, Inspect and IsComplete for
// the editor.
//
// # Cells
//
// A cell mixes imports, declarations (func, method, type, var, const) and
// statements in any order, like a Go file's body plus a main. The session
// splits it (go/scanner and go/parser) and evaluates the imports (each
// import once per interpreter), then the declarations, then the statements,
// each piece masked in place so that interpreter messages carry the cell's
// own line numbers. When a declaration uses a variable that the same cell's
// statements define, the cell runs piece by piece in source order instead.
// Top-level `x := …` creates a variable later cells see. A final expression
// is the cell's result: rich through display.Bundle (plots, images, values
// with HTML, Markdown, PNG, SVG or JSON methods), else formatted with %v.
// Calls of fmt.Print* and functions without results show nothing. A final
// expression of two values whose second is an error or nil follows Go's
// idiom: `plots.Losses(h)` shows the figure when the error is nil and fails
// the cell with the error (Name "error") when it is not.
//
// yaegi v0.16.1 mishandles definitions of several variables by one
// expression at the top level (`preds, err := f()`, `var a, b = f()`):
// functions of later cells called from another function would read
// another variable's slot. The session redefines each such variable as a
// single-variable definition after its cell, so functions declared after
// that read it right (a closure the same cell created keeps the first
// definition). A top-level statement whose blocks define several variables
// by one expression (`for … { s, err := g(i) }`), which yaegi would leave
// undefined, runs inside a function literal; it still sees and sets the
// cell's variables, and is left as it is when it holds return, goto or
// defer.
//
// # Redefinition and interpreter generations
//
// yaegi keeps the old definition when a type or a method is declared again.
// The session therefore keeps its state as data (imports, declarations by
// name, variables with the type their source tells), and when a cell
// redefines a type or a method it starts a new interpreter generation: a
// fresh interpreter that replays the imports and declarations, with the
// cell's in place of those they redefine, and carries over the variables
// whose types did not change (their values are copied by reflection; what
// they point to is shared, so a model of a library type keeps its trained
// weights). Variables whose type was redefined, or changed because it
// depends on a redefined type, or whose notebook-declared type the source
// does not tell, are dropped, and the cell's stderr says which and why:
//
//	detlab: dropped variable h: its type Head was redefined
//
// Functions, variables and constants are redefined in place. A declaration
// of an earlier cell that no longer compiles against the new types makes
// the redefining cell fail with a message naming it; the session then stays
// as it was. The same machinery recycles the interpreter every 1000 cells
// (yaegi keeps a few kilobytes per evaluation), but only when no variable
// would be lost and no goroutine started by a cell is running.
//
// # Interrupts, panics, goroutines
//
// Every cell sees `ctx`, a context.Context cancelled when Execute's context
// is (the interrupt button). Interpreted code stops at once; compiled code
// stops when it returns, so long library calls must take ctx. If an
// interrupted cell is still in compiled code after Options.InterruptGrace,
// the session moves to a fresh generation (variables carried) and leaves
// the old code running unseen. After a cell returns, its ctx is no longer
// tied to Execute's: goroutines it started keep a live context.
//
// A panic in a cell, in interpreted code or in compiled code it called,
// becomes an *ExecError (Name "panic") whose traceback has the cell lines
// yaegi reports (and the line of the top-level statement that was running
// when yaegi reports none) and the compiled frames. Every `go` statement of
// a cell is rewritten to start its goroutine through a helper that recovers
// a panic: the user sees "panic in a goroutine started by a cell: …" on the
// stderr of the cell running then (or the last one), that goroutine ends,
// and everything else survives: the session, its variables, other
// goroutines. Goroutines started by compiled library code are not covered: a
// panic there still ends the process, as in any Go program. Interrupting a
// cell also stops interpreted goroutines of earlier cells (yaegi stops every
// frame of the interpreter).
//
// # Output and input
//
// Cells print through pipes the session reads: fmt.Print* and os.Stdout /
// os.Stderr of interpreted code reach the running cell's Output. With
// Options.CaptureFDs (the detlab command) the process's descriptors 1 and 2
// are redirected too, so compiled library code and every goroutine reach it
// as well; Session.LogWriter is then the original standard error. Output
// printed after its cell returned goes to the cell running at that moment,
// or, when none is, to the last cell that ran. Small writes are coalesced
// for up to 20ms.
//
// fmt.Scan*, reads of os.Stdin in a cell (os.Stdin is an io.Reader there,
// not an *os.File) and display.Input ask the front end for one line at a
// time through Output.Input; when it refuses (allow_stdin false), reads see
// end of file. Compiled code reading the process's standard input is not
// redirected.
//
// # Magics
//
// Lines at the top of a cell: `!command` runs /bin/sh -c command and
// streams its output; `%env` lists, `%env NAME` prints, `%env NAME=VALUE`
// sets an environment variable (of the process: cells, library code and
// shell commands see it); `%time` times the rest of the cell; `%reset`
// drops every declaration and variable; `%help` lists them.
//
// # Known limits
//
// A top-level comma-ok definition (`v, ok := m[k]`, `x, ok := i.(T)`)
// panics in yaegi v0.16.1's type checker ("nil type"); use it in an if
// statement or a function. A value of a type the notebook declared shows
// through its rich methods (HTML, …) when the final expression names it
// (`h`, `&H{}`), but only with %v when a call returns it.
//
// yaegi v0.16.1 gives some compile errors a position at the start of the
// piece it compiled; the traceback then says the interpreter did not tell
// the line. To know when an interrupted evaluation has really returned,
// the session stops yaegi's code through three unexported fields of its
// Interpreter, as EvalWithContext does (stop.go); the fields are checked
// at start and a test fails if a yaegi upgrade moves them.
package session
