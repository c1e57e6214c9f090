package main

import (
	"bufio"
	"container/heap"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// exportOptions are feedbackd export's flags.
type exportOptions struct {
	// workspace limits the export to one workspace, by name; empty is all.
	workspace string
	// since keeps feedback created at or after it; zero keeps all.
	since  time.Time
	format string
}

// exportFeedback writes every feedback selected by opts to w in the
// transfer format, oldest first (by created_at, then id) across all
// workspaces, and returns how many it wrote. It reads each workspace in
// index-range pages and merges them, so memory stays bounded whatever the
// database holds.
func exportFeedback(ctx context.Context, st store.Store, w io.Writer, opts exportOptions) (int, error) {
	rw, err := newRecordWriter(opts.format, w)
	if err != nil {
		return 0, err
	}
	all, err := st.ListWorkspaces(ctx)
	if err != nil {
		return 0, err
	}
	var workspaces []*store.Workspace
	for _, ws := range all {
		if opts.workspace == "" || ws.Name == opts.workspace {
			workspaces = append(workspaces, ws)
		}
	}
	if opts.workspace != "" && len(workspaces) == 0 {
		return 0, fmt.Errorf("there is no workspace named %q", opts.workspace)
	}
	// Pages shrink as workspaces multiply, so the rows held at once stay
	// near 100,000 (but each page holds at least 16).
	limit := min(1000, max(16, 100_000/max(1, len(workspaces))))
	cursors := make(exportHeap, 0, len(workspaces))
	for _, ws := range workspaces {
		c := &exportCursor{ws: ws, q: store.ExportQuery{Since: opts.since, Limit: limit}}
		if err := c.fill(ctx, st); err != nil {
			return 0, err
		}
		if c.current() != nil {
			cursors = append(cursors, c)
		}
	}
	heap.Init(&cursors)
	n := 0
	for len(cursors) > 0 {
		c := cursors[0]
		rec, err := toRecord(c.ws.Name, c.current())
		if err != nil {
			return n, err
		}
		if err := rw.write(rec); err != nil {
			return n, err
		}
		n++
		if err := c.advance(ctx, st); err != nil {
			return n, err
		}
		if c.current() == nil {
			heap.Pop(&cursors)
		} else {
			heap.Fix(&cursors, 0)
		}
		if n%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
	}
	return n, rw.flush()
}

// exportCursor walks one workspace's feedback in export order, a page at a
// time.
type exportCursor struct {
	ws   *store.Workspace
	q    store.ExportQuery
	page []*store.Feedback
	i    int
}

func (c *exportCursor) current() *store.Feedback {
	if c.i < len(c.page) {
		return c.page[c.i]
	}
	return nil
}

func (c *exportCursor) fill(ctx context.Context, st store.Store) error {
	page, err := st.ExportFeedback(ctx, c.ws.ID, c.q)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", c.ws.Name, err)
	}
	c.page, c.i = page, 0
	return nil
}

// advance moves to the next feedback, reading the next page when the
// current one is used up and was full.
func (c *exportCursor) advance(ctx context.Context, st store.Store) error {
	c.i++
	if c.i < len(c.page) || len(c.page) < c.q.Limit {
		return nil
	}
	c.q.After = store.PositionOf(c.page[len(c.page)-1])
	return c.fill(ctx, st)
}

// exportHeap orders cursors by their current feedback, for the merge.
type exportHeap []*exportCursor

func (h exportHeap) Len() int { return len(h) }
func (h exportHeap) Less(i, j int) bool {
	return store.PositionOf(h[i].current()).Before(*store.PositionOf(h[j].current()))
}
func (h exportHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *exportHeap) Push(x any)   { *h = append(*h, x.(*exportCursor)) }
func (h *exportHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// exportTo runs exportFeedback into output: stdout when output is empty or
// "-", else a file that appears (by rename) only once the export is
// complete, so a failed export never leaves a truncated file that looks
// whole.
func exportTo(ctx context.Context, st store.Store, output string, stdout io.Writer, opts exportOptions) (int, error) {
	if output == "" || output == "-" {
		bw := bufio.NewWriterSize(stdout, 1<<16)
		n, err := exportFeedback(ctx, st, bw, opts)
		if err != nil {
			return n, err
		}
		return n, bw.Flush()
	}
	tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<16)
	n, err := exportFeedback(ctx, st, bw, opts)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), output)
}
