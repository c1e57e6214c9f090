// Command importgen writes feedback in the format of feedbackd export, to
// time feedbackd import on a realistic file (make bench-import) without
// committing data.
//
// Rows are oldest first, a millisecond apart, in 3 workspaces, with the
// metadata a chat application sends: _user (100k), _prompt (50),
// _environment (3), a model name and, on one row in ten, a nested object.
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "how many feedback rows to write")
	out := flag.String("o", "", "the file to write (default stdout)")
	format := flag.String("format", "ndjson", "ndjson or csv")
	flag.Parse()
	if err := run(*rows, *out, *format); err != nil {
		fmt.Fprintln(os.Stderr, "importgen:", err)
		os.Exit(1)
	}
}

func run(rows int, out, format string) error {
	f := os.Stdout
	if out != "" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var cw *csv.Writer
	switch format {
	case "ndjson":
	case "csv":
		cw = csv.NewWriter(w)
		if err := cw.Write([]string{"id", "workspace", "trace_id", "value", "weight", "metadata", "created_at", "updated_at"}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-format must be ndjson or csv, not %q", format)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	envs := []string{"production", "staging", "development"}
	models := []string{"gpt-4o", "claude-sonnet", "llama-3"}
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Millisecond)
		id := uuid.Must(uuid.NewV7())
		ts := at.Format("2006-01-02T15:04:05.000000Z07:00")
		meta := fmt.Sprintf(`{"_environment":%q,"_prompt":"prompt-%d","_user":"user-%d","model":%q`,
			envs[rng.IntN(3)], rng.IntN(50), rng.IntN(100_000), models[rng.IntN(3)])
		if i%10 == 0 {
			meta += fmt.Sprintf(`,"session":{"turn":%d,"tags":["a","b"],"ok":true}`, rng.IntN(20))
		}
		meta += "}"
		ws := []string{"default", "team-a", "team-b"}[i%3]
		trace := "trace-" + strconv.Itoa(rng.IntN(rows/2+1))
		value := rng.IntN(21) - 10
		weight := strconv.FormatFloat(float64(rng.IntN(11))/10, 'f', -1, 64)
		var err error
		if cw != nil {
			err = cw.Write([]string{id.String(), ws, trace, strconv.Itoa(value), weight, meta, ts, ts})
		} else {
			_, err = fmt.Fprintf(w, `{"id":%q,"workspace":%q,"trace_id":%q,"value":%d,"weight":%s,"metadata":%s,"created_at":%q,"updated_at":%q}`+"\n",
				id.String(), ws, trace, value, weight, meta, ts, ts)
		}
		if err != nil {
			return err
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	return w.Flush()
}
