//go:build linux

package main

import (
	"syscall"
	"time"
	"unsafe"
)

// sleep is nanosleep(2) on this thread: the thread itself blocks and its
// wake-up is the kernel's (at the thread's priority), not the Go
// scheduler's timers, which run on whichever thread is free.
func sleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}

// realtime puts the calling thread (locked to it) under SCHED_FIFO at
// priority 1: above every ordinary thread, below the kernel's own.
func realtime() error {
	const schedFIFO = 1
	param := struct{ priority int32 }{1}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, schedFIFO, uintptr(unsafe.Pointer(&param))); errno != 0 {
		return errno
	}
	return nil
}
