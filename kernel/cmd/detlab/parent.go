package main

import (
	"context"
	"strconv"
	"time"
)

// parentEnv names the process that launched the kernel: jupyter_client sets
// it to its own PID for every kernel it starts (unless the kernel is started
// independent of it), and ipykernel watches it.
const parentEnv = "JPY_PARENT_PID"

// parentPollInterval is how often the kernel checks that its launcher lives.
const parentPollInterval = time.Second

// watchParent returns a context that is cancelled, with cancel, when the
// launcher named by JPY_PARENT_PID is no longer the kernel's parent: a
// Jupyter server or nbconvert killed without shutting its kernels down
// (SIGKILL, a crash) would otherwise leave a kernel nobody can reach,
// holding its ports, its memory and any GPU buffers. The rule is
// ipykernel's ParentPollerUnix: only when the variable names a PID other
// than 1 (init is never gone, only reassigned), and the parent counts as gone
// as soon as getppid returns another PID (the kernel was reparented).
// Without the variable the kernel ends as before, by shutdown_request or
// SIGTERM.
func watchParent(ctx context.Context, env func(string) string, getppid func() int, every time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	pid, err := strconv.Atoi(env(parentEnv))
	if err != nil || pid <= 1 {
		return ctx, cancel
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if getppid() != pid {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// parentGone reports whether ctx ended because watchParent saw the
// launcher go (and not by SIGTERM or the caller).
func parentGone(parent, watched context.Context) bool {
	return parent.Err() == nil && watched.Err() != nil
}
