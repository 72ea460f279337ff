package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection, the accepted one
// through Listener and the dialed one through Conn.
func pair(t *testing.T) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rl := Listener(ln)
	done := make(chan net.Conn, 1)
	go func() {
		c, err := rl.Accept()
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	dialed, accepted = Conn(c), <-done
	if accepted == nil {
		t.FailNow()
	}
	t.Cleanup(func() { dialed.Close(); accepted.Close() })
	return dialed, accepted
}

func TestConnIsRawOnLinux(t *testing.T) {
	d, a := pair(t)
	_, dr := d.(*conn)
	_, ar := a.(*conn)
	if linux := runtime.GOOS == "linux"; dr != linux || ar != linux {
		t.Fatalf("raw wrapper on %s: dialed %v, accepted %v", runtime.GOOS, dr, ar)
	}
	// anything but a TCPConn passes through
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if Conn(p1) != p1 {
		t.Fatal("a net.Pipe end was wrapped")
	}
}

// More than the socket buffers hold, written in one call while the other
// end reads through a small buffer: the writer must wait for room (EAGAIN)
// and go on, the reader must see every byte in order, then EOF.
func TestLargeWriteSmallReads(t *testing.T) {
	d, a := pair(t)
	want := make([]byte, 16<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := d.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	var got bytes.Buffer
	buf := make([]byte, 1000)
	for {
		n, err := a.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, not the %d written", got.Len(), len(want))
	}
	if n, err := a.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	_, a := pair(t)
	if err := a.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Read(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("not a read OpError: %#v", err)
	}
}

func TestWriteDeadlineWhenPeerDoesNotRead(t *testing.T) {
	d, _ := pair(t)
	big := make([]byte, 64<<20) // before the deadline: zeroing it takes a while
	if err := d.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := d.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that never reads: %d, %v", n, err)
	}
	if n <= 0 || n >= 64<<20 {
		t.Fatalf("wrote %d bytes before the deadline; want part of it", n)
	}
}

// Close from another goroutine ends a Read waiting for data, with the
// error the net package gives (net.ErrClosed).
func TestCloseEndsWaitingRead(t *testing.T) {
	_, a := pair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it wait (either way the read must end)
	a.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed conn: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the read")
	}
}

// A reset by the peer comes back as the system call's error, wrapped.
func TestPeerReset(t *testing.T) {
	d, a := pair(t)
	if err := d.(interface{ SetLinger(int) error }).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	d.Close() // linger 0: RST
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.Write([]byte("x"))
		if err == nil {
			if time.Now().After(deadline) {
				t.Fatal("writes to a reset connection kept succeeding")
			}
			time.Sleep(time.Millisecond)
			continue
		}
		var se *os.SyscallError
		if !errors.As(err, &se) {
			t.Fatalf("write after reset: %v (not a system call error)", err)
		}
		// writing on raises SIGPIPE from the kernel (EPIPE), which the Go
		// runtime ignores for sockets however the write was made
		for range 3 {
			if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("write to a reset connection: %v", err)
			}
		}
		return
	}
}
