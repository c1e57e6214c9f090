package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// The transfer format of feedbackd export and import, one feedback per
// record, in NDJSON or CSV:
//
//	id          the feedback's UUID, canonical lowercase
//	workspace   the workspace's name
//	trace_id    as sent
//	value       an integer, -10..10
//	weight      a JSON number, 0..1
//	metadata    a JSON object, keys sorted, no insignificant space
//	created_at  RFC 3339 in UTC with exactly six fractional digits
//	updated_at  the same
//
// NDJSON: one JSON object a line with exactly these members, in this
// order. CSV: a header line naming the columns in this order, then one
// line a feedback, as RFC 4180 quotes it; metadata is its JSON text. Every
// value is written one way only (numbers as Go's JSON encoder writes them,
// no HTML escaping), so exporting what an export imported gives the same
// bytes.
var transferColumns = []string{"id", "workspace", "trace_id", "value", "weight", "metadata", "created_at", "updated_at"}

// transferTime is the layout of created_at and updated_at.
const transferTime = "2006-01-02T15:04:05.000000Z07:00"

// transferRecord is one feedback as the transfer format writes it.
type transferRecord struct {
	ID        string          `json:"id"`
	Workspace string          `json:"workspace"`
	TraceID   string          `json:"trace_id"`
	Value     int             `json:"value"`
	Weight    float64         `json:"weight"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
}

// toRecord renders f, of the named workspace, for the transfer format.
func toRecord(workspace string, f *store.Feedback) (*transferRecord, error) {
	meta, err := encodeJSON(f.Metadata)
	if err != nil {
		return nil, fmt.Errorf("feedback %s: metadata: %w", f.ID, err)
	}
	if f.Metadata == nil {
		meta = []byte("{}")
	}
	return &transferRecord{
		ID: f.ID, Workspace: workspace, TraceID: f.TraceID, Value: f.Value, Weight: f.Weight,
		Metadata:  meta,
		CreatedAt: f.CreatedAt.UTC().Format(transferTime),
		UpdatedAt: f.UpdatedAt.UTC().Format(transferTime),
	}, nil
}

// encodeJSON is json.Marshal without HTML escaping (an export is read by
// people and programs, never pasted into HTML), so "<" stays "<".
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// recordWriter writes transfer records in one format.
type recordWriter interface {
	write(r *transferRecord) error
	// flush writes out what is buffered.
	flush() error
}

func newRecordWriter(format string, w io.Writer) (recordWriter, error) {
	switch format {
	case "ndjson":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return ndjsonWriter{enc}, nil
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(transferColumns); err != nil {
			return nil, err
		}
		return csvWriter{cw}, nil
	}
	return nil, fmt.Errorf("--format must be ndjson or csv, not %q", format)
}

type ndjsonWriter struct{ enc *json.Encoder }

func (w ndjsonWriter) write(r *transferRecord) error { return w.enc.Encode(r) }
func (w ndjsonWriter) flush() error                  { return nil }

type csvWriter struct{ w *csv.Writer }

// write refuses a record with a carriage return before a line feed: CSV
// readers turn that pair into a line feed, so it could not come back as it
// was. NDJSON carries it.
func (w csvWriter) write(r *transferRecord) error {
	for _, field := range []string{r.Workspace, r.TraceID} {
		if strings.Contains(field, "\r\n") {
			return fmt.Errorf("feedback %s holds a CR LF line break, which CSV cannot carry exactly: export it as NDJSON", r.ID)
		}
	}
	weight, err := json.Marshal(r.Weight)
	if err != nil {
		return err
	}
	return w.w.Write([]string{r.ID, r.Workspace, r.TraceID, strconv.Itoa(r.Value), string(weight), string(r.Metadata), r.CreatedAt, r.UpdatedAt})
}

func (w csvWriter) flush() error {
	w.w.Flush()
	return w.w.Error()
}

// parseTransferTime reads created_at or updated_at: any RFC 3339 time,
// kept to the microsecond as every store keeps times.
func parseTransferTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}
