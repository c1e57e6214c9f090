// Command feedbackd runs the feedbackd service and manages its API keys.
//
// main only wires the process to run, so tests start the whole program,
// flags and environment included, on a loopback port.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "feedbackd:", err)
		os.Exit(1)
	}
}

// run is the whole program: args are os.Args, getenv reads the environment,
// and output goes to stdout (results) and stderr (logs). It returns when the
// command is done or, for serve, when ctx ends and shutdown has finished.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return newApp(getenv, stdout, stderr).Run(ctx, args)
}
