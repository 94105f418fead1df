// Command detlab is the Go (detlab) Jupyter kernel.
//
//	detlab install [--user | --sys-prefix | --prefix DIR] [--name NAME]
//	detlab kernel CONNECTION_FILE
//	detlab run NOTEBOOK.ipynb [-o OUT.ipynb] [-p name=value ...] [--keep-going] [--timeout D]
//
// install writes the kernelspec (default: the user's Jupyter data dir);
// kernel is what Jupyter starts; run executes a notebook headless, in place
// unless -o is given, and exits 1 when a cell fails.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/detlab/detlab/kernel/kernelspec"
	"github.com/detlab/detlab/kernel/nbrun"
)

const usage = `usage:
  detlab install [--user | --sys-prefix | --prefix DIR] [--name NAME]
  detlab kernel [--history FILE] CONNECTION_FILE
  detlab run NOTEBOOK.ipynb [-o OUT.ipynb] [-p name=value ...] [--keep-going] [--timeout DURATION]
  detlab version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "install":
		err = installCmd(args)
	case "kernel":
		err = kernelCmd(args)
	case "run":
		err = runCmd(args)
	case "version":
		fmt.Println(version())
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "detlab: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "detlab:", err)
		if _, ok := err.(usageError); ok {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

func installCmd(args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	user := fs.Bool("user", false, "install into the user's Jupyter data dir (default)")
	sysPrefix := fs.Bool("sys-prefix", false, "install into sys.prefix/share/jupyter of python3 (venv, conda)")
	prefix := fs.String("prefix", "", "install into `DIR`/share/jupyter")
	name := fs.String("name", kernelspec.DefaultName, "kernel `NAME`")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError("install takes no arguments")
	}
	opts := kernelspec.Options{Where: kernelspec.User, Name: *name}
	n := 0
	for _, set := range []bool{*user, *sysPrefix, *prefix != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return usageError("choose one of --user, --sys-prefix, --prefix")
	}
	switch {
	case *sysPrefix:
		opts.Where = kernelspec.SysPrefix
	case *prefix != "":
		opts.Where, opts.Prefix = kernelspec.Prefix, *prefix
	}
	return install(opts)
}

func kernelCmd(args []string) error {
	fs := flag.NewFlagSet("kernel", flag.ContinueOnError)
	hist := fs.String("history", os.Getenv("DETLAB_HISTORY"), "keep the input history in `FILE` across kernel starts (default $DETLAB_HISTORY; empty = memory only)")
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() != 1 {
		return usageError("kernel needs exactly one CONNECTION_FILE")
	}
	return runKernel(fs.Arg(0), *hist)
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	out := fs.String("o", "", "write the executed notebook to `OUT.ipynb` (default: in place)")
	var params paramList
	fs.Var(&params, "p", "set a parameter, papermill style: `name=value` (repeatable)")
	keep := fs.Bool("keep-going", false, "run the remaining cells after a failing one")
	timeout := fs.Duration("timeout", 0, "interrupt a cell running longer than `DURATION` (0 = never)")
	quiet := fs.Bool("q", false, "do not print a line per cell")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError(err.Error())
	}
	if len(pos) != 1 {
		return usageError("run needs exactly one NOTEBOOK.ipynb")
	}
	return runNotebook(pos[0], *out, params, nbrun.Options{KeepGoing: *keep, CellTimeout: *timeout}, !*quiet)
}

// parseInterleaved parses flags that may come after positional arguments
// ("run nb.ipynb -o out.ipynb").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

type paramList []nbrun.Param

func (p *paramList) String() string {
	var s []string
	for _, x := range *p {
		s = append(s, x.Name+"="+x.Value)
	}
	return strings.Join(s, " ")
}

func (p *paramList) Set(v string) error {
	x, err := nbrun.ParseParam(v)
	if err != nil {
		return err
	}
	*p = append(*p, x)
	return nil
}
