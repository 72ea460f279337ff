//go:build !linux

package rawio

import "net"

// Conn returns c unchanged: raw system calls are used on Linux only.
func Conn(c net.Conn) net.Conn { return c }
