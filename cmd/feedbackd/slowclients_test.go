package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/feedbackd/feedbackd/client"
)

// Many clients that send their requests byte by byte, or not at all, do
// not keep normal clients from being served: every normal request is
// answered while all the slow connections are still open (the timeouts,
// an hour here, cannot have freed the server of them).
func TestSlowClientsDoNotHoldTheServer(t *testing.T) {
	inst := start(t, backends[0], "", map[string]string{"FEEDBACKD_HEADER_TIMEOUT": "1h", "FEEDBACKD_READ_TIMEOUT": "1h"})
	const slow = 300
	cut, stop := slowClients(t, inst.base, slow)
	defer stop()

	c := inst.client(t, inst.key)
	ctx := contextWithTimeout(t, hangGuard)
	for i := range 50 {
		if _, err := c.Feedback.Create(ctx, client.FeedbackRequest{TraceID: fmt.Sprint("normal-", i), Value: 1}); err != nil {
			t.Fatalf("a normal client beside %d slow ones: %v", slow, err)
		}
	}
	if n := len(cut); n > 0 {
		t.Errorf("%d of the %d slow connections were closed before the normal requests were answered, want all still open", n, slow)
	}
}

// Clients that send a request's headers byte by byte, or nothing at all,
// are cut off by the header timeout: the server closes every one of their
// connections, which nothing else would (the read timeout is an hour).
func TestSlowClientsAreCutOffByTheHeaderTimeout(t *testing.T) {
	inst := start(t, backends[0], "", map[string]string{"FEEDBACKD_HEADER_TIMEOUT": "1s", "FEEDBACKD_READ_TIMEOUT": "1h"})
	const slow = 30
	cut, stop := slowClients(t, inst.base, slow)
	defer stop()
	guard := time.After(hangGuard)
	for i := range slow {
		select {
		case <-cut:
		case <-guard:
			t.Fatalf("%d of the %d slow connections still open after %v: the header timeout did not cut them off", slow-i, slow, hangGuard)
		}
	}
}

// slowClients opens n connections to the server at base that send a
// request line and then a header byte every 200 ms; every third sends
// nothing at all. Each connection the server closes is reported on cut;
// stop closes the others and waits for them all.
func slowClients(t *testing.T, base string, n int) (cut <-chan struct{}, stop func()) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, n)
	done := make(chan struct{})
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, n)
	for i := range n {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		if i%3 != 0 {
			fmt.Fprintf(conn, "POST /v1/feedback HTTP/1.1\r\nHost: %s\r\n", u.Host)
		}
		wg.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte("X")); err != nil {
					return
				}
			}
		})
		wg.Go(func() {
			// Returns when the server closes the connection, or stop does.
			if _, err := io.Copy(io.Discard, conn); !errors.Is(err, net.ErrClosed) {
				closed <- struct{}{}
			}
		})
	}
	return closed, func() {
		close(done)
		for _, conn := range conns {
			conn.Close()
		}
		wg.Wait()
	}
}

// A request is stopped a second before the write timeout (half a short
// one), while its 503 can still be written; no write timeout, no limit.
func TestRequestTimeoutLeavesTimeToAnswer(t *testing.T) {
	for write, want := range map[time.Duration]time.Duration{
		30 * time.Second:       29 * time.Second,
		time.Second:            500 * time.Millisecond,
		500 * time.Millisecond: 250 * time.Millisecond,
		0:                      0,
	} {
		if got := requestTimeout(write); got != want {
			t.Errorf("requestTimeout(%s) = %s, want %s", write, got, want)
		}
	}
}
