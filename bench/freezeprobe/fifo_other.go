//go:build !linux

package main

import (
	"errors"
	"time"
)

func realtime() error { return errors.New("SCHED_FIFO: Linux only") }

func sleep(d time.Duration) { time.Sleep(d) }
