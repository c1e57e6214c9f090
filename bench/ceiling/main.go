// Command ceiling is the reference server of the ingestion benchmark (make
// bench): the fastest feedbackd could possibly ingest on this machine with
// its HTTP stack.
//
// It serves one route, POST /v1/feedback, with the same router (Echo) and the
// same decoder (encoding/json) as feedbackd, and does nothing else: no
// authentication, no validation, no storage, a constant answer. Whatever
// feedbackd's throughput falls short of this server's under the same load is
// the price of feedbackd's own work, so the gap is what is worth optimizing,
// while the ceiling itself is not.
//
// With -store FILE it is the durability floor instead: each request's body
// is appended to a bare SQLite table (no index, WAL, synchronous FULL, as
// feedbackd's store) by one writer that puts every request waiting into one
// commit, and answered after that commit. Its latency under a fixed rate is
// what any synchronous durable store on this machine pays at least; what
// feedbackd adds beyond it is the price of its rows, indexes and derived
// data.
//
// It prints "listening on http://ADDR" on stdout once it accepts connections
// (useful with the default --addr 127.0.0.1:0, a free port) and shuts down
// gracefully on SIGINT or SIGTERM.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
)

// feedback mirrors the fields of feedbackd's request body, so that decoding
// costs what feedbackd's decoding costs: the same fields into the same kinds
// of Go values.
type feedback struct {
	TraceID  string         `json:"trace_id"`
	Value    int            `json:"value"`
	Weight   *float64       `json:"weight,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// accepted is the constant answer, shaped like feedbackd's success answer.
var accepted = []byte(`{"status":"success","message":"ok","feedback_ids":[]}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "the address to listen on (port 0 picks a free one)")
	storePath := flag.String("store", "", "a SQLite file to append each body to before answering (the durability floor)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var store *bodyStore
	if *storePath != "" {
		var err error
		if store, err = openBodyStore(*storePath); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling:", err)
			os.Exit(1)
		}
		defer store.close()
	}
	if err := run(ctx, *addr, store, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then lets in-flight requests finish.
func run(ctx context.Context, addr string, store *bodyStore, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newRouter(store), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// newRouter builds the Echo instance with its one route. No middleware: the
// ceiling measures Echo's routing and one JSON decode (and, with a store,
// one durable append), nothing feedbackd might add on top.
func newRouter(store *bodyStore) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.POST("/v1/feedback", func(c echo.Context) error { return ingest(c, store) })
	return e
}

// ingest decodes the body, one feedback object or an array of them, and
// answers the constant success. A body that is not valid JSON gets 400, so
// that a broken load generator shows up as errors rather than as speed.
func ingest(c echo.Context, store *bodyStore) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"status": "failure", "message": err.Error()})
	}
	if err := decode(body); err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"status": "failure", "message": err.Error()})
	}
	if store != nil {
		if err := store.append(c.Request().Context(), body); err != nil {
			return c.JSON(http.StatusInternalServerError, map[string]string{"status": "failure", "message": err.Error()})
		}
	}
	return c.JSONBlob(http.StatusOK, accepted)
}

// decode unmarshals body into a slice when it is a JSON array and into a
// single feedback otherwise, as feedbackd accepts both.
func decode(body []byte) error {
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		var items []feedback
		return json.Unmarshal(body, &items)
	}
	var item feedback
	return json.Unmarshal(body, &item)
}
