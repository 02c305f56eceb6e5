package main

import "syscall"

// syscallUmask sets the process's umask and returns the previous one, so
// the control socket is created without a moment of wider permissions.
func syscallUmask(mask int) int { return syscall.Umask(mask) }
