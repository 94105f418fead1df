package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/detlab/detlab/kernel/dispatch"
	"github.com/detlab/detlab/kernel/kernelspec"
	"github.com/detlab/detlab/kernel/nbrun"
	"github.com/detlab/detlab/kernel/session"
	"github.com/detlab/detlab/kernel/wire"
)

// version is the module version, or the VCS revision for a development build.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev+" + s.Value[:12]
		}
	}
	return "dev"
}

func install(opts kernelspec.Options) error {
	dir, err := kernelspec.Install(opts)
	if err != nil {
		return err
	}
	fmt.Printf("installed kernelspec %q (Go (detlab)) in %s\n", filepath.Base(dir), dir)
	return nil
}

// runKernel serves one kernel until the front end shuts it down. SIGINT is
// ignored (interrupts come as messages); SIGTERM ends it, and so does the
// death of the launcher that JPY_PARENT_PID names (watchParent).
func runKernel(connFile, historyFile string) error {
	info, err := wire.ReadConnectionFile(connFile)
	if err != nil {
		return err
	}
	signal.Ignore(syscall.SIGINT)
	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := watchParent(sigCtx, os.Getenv, os.Getppid, parentPollInterval)
	defer cancel()
	sess, err := session.New(session.Options{CaptureFDs: true})
	if err != nil {
		return err
	}
	defer sess.Close()
	logger := log.New(sess.LogWriter(), "detlab: ", log.LstdFlags)
	srv, err := wire.Listen(ctx, info, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	d := dispatch.New(srv, sess, dispatch.Options{Version: version(), HistoryFile: historyFile, Logger: logger})
	restart, err := d.Run(ctx)
	if parentGone(sigCtx, ctx) {
		logger.Printf("the launcher (%s=%s) is gone; exiting", parentEnv, os.Getenv(parentEnv))
		return nil
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if restart {
		logger.Printf("restart requested; exiting so that the front end starts a new kernel")
	}
	return nil
}

// runNotebook executes the notebook at in and writes it to out (in place when
// out is empty). Cells run with the notebook's directory as working directory.
func runNotebook(in, out string, params []nbrun.Param, opts nbrun.Options, progress bool) error {
	if out == "" {
		out = in
	}
	in, err := filepath.Abs(in)
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	nb, err := nbrun.ReadFile(in)
	if err != nil {
		return err
	}
	if err := nbrun.InjectParameters(nb, params); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sess, err := session.New(session.Options{Dir: filepath.Dir(in), CaptureFDs: true})
	if err != nil {
		return err
	}
	logw := sess.LogWriter()
	if progress {
		opts.Progress = logw
	}
	res, runErr := nbrun.Run(ctx, sess, nb, opts)
	if cerr := sess.Close(); cerr != nil {
		fmt.Fprintln(logw, "detlab:", cerr)
	}
	if err := nb.WriteFile(out); err != nil {
		return err
	}
	for _, ce := range res.Errors {
		fmt.Fprintf(logw, "%s: %v\n", filepath.Base(in), ce)
	}
	fmt.Fprintf(logw, "%s: %d cells run, %d failed; wrote %s\n", filepath.Base(in), res.Executed, len(res.Errors), out)
	return runErr
}
