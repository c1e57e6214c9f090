package main

import (
	"context"
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
// not keep normal clients from being served, and are cut off by the
// header timeout.
func TestSlowClientsDoNotHoldTheServer(t *testing.T) {
	inst := start(t, backends[0], "", map[string]string{"FEEDBACKD_HEADER_TIMEOUT": "1s", "FEEDBACKD_READ_TIMEOUT": "2s"})
	u, err := url.Parse(inst.base)
	if err != nil {
		t.Fatal(err)
	}
	const slow = 300
	var wg sync.WaitGroup
	cut := make(chan time.Duration, slow)
	stop := make(chan struct{})
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			began := time.Now()
			// A request line and then one header byte at a time, slowly;
			// every third connection sends nothing at all.
			if i%3 != 0 {
				fmt.Fprintf(conn, "POST /v1/feedback HTTP/1.1\r\nHost: %s\r\n", u.Host)
			}
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if _, err := conn.Write([]byte("X")); err != nil {
						return
					}
				}
			}()
			_, _ = io.Copy(io.Discard, conn) // returns when the server closes
			cut <- time.Since(began)
		}()
	}
	time.Sleep(200 * time.Millisecond)

	c := inst.client(t, inst.key)
	began := time.Now()
	for i := range 50 {
		if _, err := c.Feedback.Create(context.Background(), client.FeedbackRequest{TraceID: fmt.Sprint("normal-", i), Value: 1}); err != nil {
			t.Fatalf("a normal client beside %d slow ones: %v", slow, err)
		}
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("50 normal requests took %v beside the slow clients", d)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("slow connections were still open 15s later: no timeout cut them off")
	}
	close(stop)
	close(cut)
	for d := range cut {
		if d > 10*time.Second {
			t.Errorf("a slow connection lasted %v, past the 1s header timeout", d)
		}
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
