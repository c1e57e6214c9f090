package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/store"
)

// importBatch is how many rows share one CreateFeedback: the API's largest
// bulk, the store's bulk path.
const importBatch = 1000

// importParallel is how many batches import keeps in flight.
const importParallel = 4

// importOptions are feedbackd import's settings.
type importOptions struct {
	// format is ndjson or csv ("auto" is resolved before).
	format string
	// progress is told about each committed batch; nil tells nobody.
	progress progress
	// parallel is how many batches may be stored at once (at least 1).
	parallel int
}

// importStats sums up an import.
type importStats struct {
	// imported counts rows stored by this run; present counts rows skipped
	// because their id was already stored (an earlier, interrupted run).
	imported, present int
}

// progress hears how an import advances.
type progress interface {
	// committed is called after each batch commits, with the totals so
	// far and the bytes of input read to reach them.
	committed(stats importStats, read int64)
	// done is called once at the end, whatever the outcome.
	done(stats importStats, err error)
}

// importFeedback loads the transfer format from r into st in batches of
// importBatch through the store's bulk path, and returns what it did.
//
// Every row is checked by the API's own rules (server.CheckFeedback) and
// the transfer format's; the first bad row stops the import with its line
// number, after the batches before it committed. Ids, workspaces (by name,
// created when missing), timestamps and metadata are kept as they are.
//
// Each batch commits atomically, and rows whose id is already stored are
// skipped, so an import interrupted anywhere (a crash, ^C, a bad row fixed
// afterwards) is finished by running it again, without duplicates.
func importFeedback(ctx context.Context, st store.Store, r io.Reader, opts importOptions) (importStats, error) {
	stats, err := importBatches(ctx, st, r, opts)
	if opts.progress != nil {
		opts.progress.done(stats, err)
	}
	return stats, err
}

// parsedBatch is one batch of rows ready to store, with the input bytes
// read up to its end.
type parsedBatch struct {
	rows []*store.Feedback
	read int64
	err  error
}

func importBatches(ctx context.Context, st store.Store, r io.Reader, opts importOptions) (importStats, error) {
	var stats importStats
	counted := &countingReader{r: r}
	records, err := newRecordReader(opts.format, counted)
	if err != nil {
		return stats, err
	}
	ctx, cancel := context.WithCancel(ctx)
	// Parsing and checking the next batch overlaps storing this one.
	batches := make(chan parsedBatch, 2)
	defer func() {
		// Stop the parser and wait for it: it uses the store, which the
		// caller closes next.
		cancel()
		for range batches {
		}
	}()
	go func() {
		defer close(batches)
		workspaces := map[string]string{}
		var rows []*store.Feedback
		seen := map[string]int{}
		send := func(b parsedBatch) bool {
			select {
			case batches <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			rec, line, err := records.next()
			if err == io.EOF {
				break
			}
			if err == nil {
				if prev, dup := seen[rec.ID]; dup {
					err = fmt.Errorf("id %s is also on line %d", rec.ID, prev)
				}
			}
			var f *store.Feedback
			if err == nil {
				f, err = toFeedback(ctx, st, workspaces, rec)
			}
			if err != nil {
				send(parsedBatch{err: fmt.Errorf("line %d: %w", line, err)})
				return
			}
			seen[rec.ID] = line
			rows = append(rows, f)
			if len(rows) == importBatch {
				if !send(parsedBatch{rows: rows, read: counted.n}) {
					return
				}
				rows, seen = nil, map[string]int{}
			}
		}
		if len(rows) > 0 {
			send(parsedBatch{rows: rows, read: counted.n})
		}
	}()
	// Several batches in flight let a store commit them together (the
	// SQLite writer groups whatever is queued into one transaction, which
	// shares its fsync and its rollup upserts).
	var (
		mu       sync.Mutex
		firstErr error
		read     int64
		wg       sync.WaitGroup
	)
	fail := func(err error, stop bool) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		if stop {
			cancel()
		}
	}
	for range max(1, opts.parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if b.err != nil {
					// A bad row: the batches before it still commit.
					fail(b.err, false)
					return
				}
				if ctx.Err() != nil {
					return
				}
				imported, present, err := storeBatch(ctx, st, b.rows)
				mu.Lock()
				stats.imported += imported
				stats.present += present
				read = max(read, b.read)
				if err == nil && opts.progress != nil {
					opts.progress.committed(stats, read)
				}
				mu.Unlock()
				if err != nil {
					fail(err, true)
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return stats, firstErr
	}
	return stats, ctx.Err()
}

// storeBatch stores rows in one atomic CreateFeedback. When some ids are
// already stored (ECONFLICT), it leaves those out and tries the rest.
// Import skips stored ids rather than replacing them (PutFeedback), though
// an export's ids are ids of its rows: re-importing an export is then a
// no-op even for rows edited since the export, which an old file must not
// roll back, and the bulk load reads no stored rows.
func storeBatch(ctx context.Context, st store.Store, rows []*store.Feedback) (imported, present int, err error) {
	for range 5 {
		err := st.CreateFeedback(ctx, rows, nil)
		if err == nil {
			return len(rows), present, nil
		}
		if store.ErrorCode(err) != store.ECONFLICT {
			return 0, present, err
		}
		ids := make([]string, len(rows))
		for i, f := range rows {
			ids[i] = f.ID
		}
		existing, lerr := st.ExistingFeedbackIDs(ctx, ids)
		if lerr != nil {
			return 0, present, lerr
		}
		if len(existing) == 0 {
			return 0, present, err // a conflict that is not an id
		}
		stored := make(map[string]bool, len(existing))
		for _, id := range existing {
			stored[id] = true
		}
		rows = slices.DeleteFunc(slices.Clone(rows), func(f *store.Feedback) bool { return stored[f.ID] })
		present += len(existing)
		if len(rows) == 0 {
			return 0, present, nil
		}
	}
	return 0, present, errors.New("rows kept conflicting: is another import of the same file running?")
}

// importRecord is one row as read, before it is checked.
type importRecord struct {
	ID, Workspace        string
	CreatedAt, UpdatedAt string
	// item is the row as a FeedbackRequest JSON object (trace_id, value,
	// weight, metadata), for server.CheckFeedback.
	item []byte
}

// toFeedback checks one record and turns it into the feedback to store,
// creating its workspace when missing (workspaces caches their ids).
func toFeedback(ctx context.Context, st store.Store, workspaces map[string]string, rec *importRecord) (*store.Feedback, error) {
	if u, err := uuid.Parse(rec.ID); err != nil || u.String() != rec.ID {
		return nil, fmt.Errorf("id: %q is not a UUID in canonical form (lowercase, with hyphens)", rec.ID)
	}
	if strings.TrimSpace(rec.Workspace) == "" || !utf8.ValidString(rec.Workspace) {
		return nil, errors.New("workspace: a workspace name is required")
	}
	it, err := server.CheckFeedback(rec.item)
	if err != nil {
		return nil, err
	}
	created, err := parseTransferTime(rec.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("created_at: %w", err)
	}
	updated, err := parseTransferTime(rec.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("updated_at: %w", err)
	}
	if updated.Before(created) {
		return nil, errors.New("updated_at: before created_at")
	}
	ws, ok := workspaces[rec.Workspace]
	if !ok {
		w, err := st.EnsureWorkspace(ctx, rec.Workspace)
		if err != nil {
			return nil, fmt.Errorf("workspace %q: %w", rec.Workspace, err)
		}
		ws = w.ID
		workspaces[rec.Workspace] = ws
	}
	f := &store.Feedback{
		ID: rec.ID, WorkspaceID: ws, TraceID: it.TraceID, Value: it.Value, Weight: 1,
		Metadata: map[string]any{}, CreatedAt: created, UpdatedAt: updated,
	}
	if it.Weight != nil {
		f.Weight = *it.Weight
	}
	if it.Metadata != nil {
		f.Metadata = *it.Metadata
	}
	return f, nil
}

// recordReader reads import records with their line numbers; io.EOF after
// the last.
type recordReader interface {
	next() (*importRecord, int, error)
}

func newRecordReader(format string, r io.Reader) (recordReader, error) {
	switch format {
	case "ndjson":
		sc := bufio.NewScanner(r)
		// A row is at most a 256-character trace id and 32 KiB of
		// metadata, escaped; 4 MiB leaves room for any valid one.
		sc.Buffer(make([]byte, 0, 1<<16), 4<<20)
		return &ndjsonReader{sc: sc}, nil
	case "csv":
		cr := csv.NewReader(r)
		cr.ReuseRecord = true
		return &csvReader{r: cr}, nil
	}
	return nil, fmt.Errorf("--format must be auto, ndjson or csv, not %q", format)
}

type ndjsonReader struct {
	sc   *bufio.Scanner
	line int
}

func (r *ndjsonReader) next() (*importRecord, int, error) {
	for r.sc.Scan() {
		r.line++
		line := bytes.TrimSpace(r.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		rec, err := ndjsonRecord(line)
		return rec, r.line, err
	}
	if err := r.sc.Err(); err != nil {
		return nil, r.line + 1, err
	}
	return nil, r.line, io.EOF
}

// ndjsonRecord reads one NDJSON line: an object with the transfer format's
// members, matched by exact name; weight, metadata and updated_at may be
// left out (1, {}, created_at), anything else is an error.
func ndjsonRecord(line []byte) (*importRecord, error) {
	if !utf8.Valid(line) {
		return nil, errors.New("not valid UTF-8")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(line, &members); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	rec := &importRecord{item: line}
	for name, raw := range members {
		var dst *string
		switch name {
		case "id":
			dst = &rec.ID
		case "workspace":
			dst = &rec.Workspace
		case "created_at":
			dst = &rec.CreatedAt
		case "updated_at":
			dst = &rec.UpdatedAt
		case "trace_id", "value", "weight", "metadata":
			continue // checked by server.CheckFeedback
		default:
			return nil, fmt.Errorf("unknown member %q (the members are %s)", name, strings.Join(transferColumns, ", "))
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return nil, fmt.Errorf("%s: must be a string", name)
		}
	}
	for name, v := range map[string]string{"id": rec.ID, "workspace": rec.Workspace, "created_at": rec.CreatedAt} {
		if v == "" {
			return nil, fmt.Errorf("%s: required", name)
		}
	}
	if rec.UpdatedAt == "" {
		rec.UpdatedAt = rec.CreatedAt
	}
	return rec, nil
}

type csvReader struct {
	r      *csv.Reader
	header bool
}

func (r *csvReader) next() (*importRecord, int, error) {
	fields, err := r.r.Read()
	if err == io.EOF {
		if !r.header {
			return nil, 1, errors.New("the CSV file is empty: it needs the header line " + strings.Join(transferColumns, ","))
		}
		return nil, 0, io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, pe.StartLine, fmt.Errorf("not valid CSV: %v", pe.Err)
	}
	if err != nil {
		return nil, 0, err
	}
	line, _ := r.r.FieldPos(0)
	if !r.header {
		if !slices.Equal(fields, transferColumns) {
			return nil, line, fmt.Errorf("the header must be %s", strings.Join(transferColumns, ","))
		}
		r.header = true
		return r.next()
	}
	rec, err := csvRecord(fields)
	return rec, line, err
}

// csvRecord reads one CSV row of the transfer format's columns; weight,
// metadata and updated_at may be empty (1, {}, created_at).
func csvRecord(f []string) (*importRecord, error) {
	for i, v := range f {
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("%s: not valid UTF-8", transferColumns[i])
		}
	}
	rec := &importRecord{ID: f[0], Workspace: f[1], CreatedAt: f[6], UpdatedAt: f[7]}
	for i, name := range []string{"id", "workspace", "trace_id", "value", "created_at"} {
		if f[[]int{0, 1, 2, 3, 6}[i]] == "" {
			return nil, fmt.Errorf("%s: required", name)
		}
	}
	if rec.UpdatedAt == "" {
		rec.UpdatedAt = rec.CreatedAt
	}
	// The row as a FeedbackRequest, so the API's rules check it as they
	// check a request: numbers go in as written, and must be numbers.
	trace, err := json.Marshal(f[2])
	if err != nil {
		return nil, err
	}
	var item bytes.Buffer
	item.WriteString(`{"trace_id":`)
	item.Write(trace)
	for _, c := range []struct {
		name, text string
		number     bool
	}{{"value", f[3], true}, {"weight", f[4], true}, {"metadata", f[5], false}} {
		if c.text == "" {
			continue
		}
		if !json.Valid([]byte(c.text)) || (c.number && !isJSONNumber(c.text)) {
			kind := "a JSON object"
			if c.number {
				kind = "a number"
			}
			return nil, fmt.Errorf("%s: %q is not %s", c.name, c.text, kind)
		}
		item.WriteString(`,"` + c.name + `":`)
		item.WriteString(c.text)
	}
	item.WriteByte('}')
	rec.item = item.Bytes()
	return rec, nil
}

// isJSONNumber says whether s, valid JSON, is a number.
func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sniffFormat picks ndjson or csv for --format auto: by the file's
// extension, else by its first byte ('{' is NDJSON).
func sniffFormat(name string, r *bufio.Reader) string {
	switch lower := strings.ToLower(name); {
	case strings.HasSuffix(lower, ".csv"):
		return "csv"
	case strings.HasSuffix(lower, ".ndjson"), strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".json"):
		return "ndjson"
	}
	for {
		b, err := r.Peek(1)
		if err != nil || len(b) == 0 {
			return "ndjson"
		}
		if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
			_, _ = r.ReadByte()
			continue
		}
		if b[0] == '{' {
			return "ndjson"
		}
		return "csv"
	}
}
