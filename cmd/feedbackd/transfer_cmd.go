package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/feedbackd/feedbackd/server/store"
)

// exportCommand is feedbackd export.
func exportCommand(dbFlag cli.Flag, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write feedback out as NDJSON or CSV",
		Description: "Streams every feedback (of every workspace, or of --workspace) oldest first, in a\n" +
			"stable format that feedbackd import reads back exactly: id, workspace, trace_id, value,\n" +
			"weight, metadata (JSON), created_at, updated_at (RFC 3339, UTC, microseconds).\n" +
			"It reads in pages, so memory stays small whatever the database holds, and it may run\n" +
			"beside a serving feedbackd.",
		Flags: []cli.Flag{
			dbFlag,
			&cli.StringFlag{Name: "workspace", Usage: "export only this workspace (by name)"},
			&cli.StringFlag{Name: "since", Usage: "export only feedback created at or after this RFC 3339 time"},
			&cli.StringFlag{Name: "format", Value: "ndjson", Usage: "ndjson or csv"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to this file (it appears once complete) instead of stdout"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return errors.New("export takes no arguments (the file is --output)")
			}
			opts := exportOptions{workspace: cmd.String("workspace"), format: cmd.String("format")}
			if s := cmd.String("since"); s != "" {
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return fmt.Errorf("--since must be an RFC 3339 time such as 2026-11-01T00:00:00Z, not %q", s)
				}
				opts.since = t
			}
			if opts.format != "ndjson" && opts.format != "csv" {
				return fmt.Errorf("--format must be ndjson or csv, not %q", opts.format)
			}
			return withStore(ctx, cmd.String("db"), func(st store.Store) error {
				n, err := exportTo(ctx, st, cmd.String("output"), stdout, opts)
				if err != nil {
					return err
				}
				if out := cmd.String("output"); out != "" && out != "-" {
					fmt.Fprintf(stderr, "exported %d feedback to %s\n", n, out)
				}
				return nil
			})
		},
	}
}

// importCommand is feedbackd import.
func importCommand(dbFlag cli.Flag, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "load feedback written by feedbackd export (NDJSON or CSV)",
		ArgsUsage: "FILE (- reads stdin)",
		Description: "Loads every row in batches of 1000 through the store's bulk path, keeping ids, workspaces\n" +
			"(by name, created when missing), timestamps and metadata. Each row must pass the API's\n" +
			"own checks; the first bad row stops the import and is named by its line.\n" +
			"Each batch commits whole, and rows whose id is already stored are skipped: after an\n" +
			"interruption, run the same import again to finish it, without duplicates.\n" +
			"Imported feedback reaches the workspaces' webhooks as any write does, unless --no-webhooks.",
		Flags: []cli.Flag{
			dbFlag,
			&cli.StringFlag{Name: "format", Value: "auto", Usage: "ndjson, csv, or auto (by the file's extension, else its first character)"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "bar, lines, off, or auto (a bar on a terminal, lines otherwise), on stderr"},
			&cli.BoolFlag{Name: "no-webhooks", Usage: "record no webhook events for the imported feedback (a restore, a migration: the receivers saw it already)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return errors.New("import takes exactly one FILE (- reads stdin)")
			}
			name := cmd.Args().First()
			var (
				in   io.Reader = os.Stdin
				size int64     = -1
			)
			if name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
				in = f
			}
			br := bufio.NewReaderSize(in, 1<<16)
			format := cmd.String("format")
			if format == "auto" {
				format = sniffFormat(name, br)
			}
			if format != "ndjson" && format != "csv" {
				return fmt.Errorf("--format must be auto, ndjson or csv, not %q", format)
			}
			prog, err := newProgress(cmd.String("progress"), stderr, size)
			if err != nil {
				return err
			}
			return withStore(ctx, cmd.String("db"), func(st store.Store) error {
				if cmd.Bool("no-webhooks") {
					st.SetRecordEvents(false)
				}
				start := time.Now()
				stats, err := importFeedback(ctx, st, br, importOptions{format: format, progress: prog, parallel: importParallel})
				took := time.Since(start)
				if err != nil {
					return fmt.Errorf("%w\n(%d rows imported by this run before it stopped; run the same import again to finish: rows already imported are skipped)", err, stats.imported)
				}
				rows := stats.imported + stats.present
				_, err = fmt.Fprintf(stdout, "imported %d feedback (%d already present) in %s: %.0f rows/s\n",
					stats.imported, stats.present, took.Round(time.Millisecond), float64(rows)/took.Seconds())
				return err
			})
		},
	}
}
