package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchParent checks ipykernel's rule: the kernel's context ends once
// getppid stops returning the PID that JPY_PARENT_PID names, and never when
// the variable is absent, malformed or names init.
func TestWatchParent(t *testing.T) {
	for _, c := range []struct {
		name, env string
		wantGone  bool
	}{
		{"unset", "", false},
		{"malformed", "12x", false},
		{"init", "1", false},
		{"negative", "-5", false},
		{"launcher dies", "4242", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ppid atomic.Int64
			ppid.Store(4242)
			env := func(k string) string {
				if k != parentEnv {
					t.Errorf("looked up %q", k)
				}
				return c.env
			}
			ctx, cancel := watchParent(context.Background(), env, func() int { return int(ppid.Load()) }, time.Millisecond)
			defer cancel()
			time.Sleep(20 * time.Millisecond)
			if ctx.Err() != nil {
				t.Fatal("cancelled while the launcher is still the parent")
			}
			ppid.Store(1) // reparented to init: the launcher is gone
			select {
			case <-ctx.Done():
				if !c.wantGone {
					t.Fatal("cancelled, want the kernel to keep running")
				}
				if !parentGone(context.Background(), ctx) {
					t.Error("parentGone = false after the launcher went")
				}
			case <-time.After(200 * time.Millisecond):
				if c.wantGone {
					t.Fatal("not cancelled 200 ms after the launcher went")
				}
			}
		})
	}
}

// TestWatchParentStopsWithCaller checks that the watcher ends with its
// parent context (SIGTERM) and that parentGone then says the launcher is
// not why.
func TestWatchParentStopsWithCaller(t *testing.T) {
	sig, stop := context.WithCancel(context.Background())
	ctx, cancel := watchParent(sig, func(string) string { return "4242" }, func() int { return 4242 }, time.Millisecond)
	defer cancel()
	stop()
	<-ctx.Done()
	if parentGone(sig, ctx) {
		t.Error("parentGone = true after SIGTERM's cancellation")
	}
}
