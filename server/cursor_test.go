package server

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// A cursor carries a listing position, time and id, exactly: positions
// that differ only in a microsecond or only in the id are different
// cursors, and each decodes back to itself, before 1970 and at the ends of
// RFC 3339's range too.
func TestCursorCarriesTheExactPosition(t *testing.T) {
	at := time.Date(2026, 11, 26, 17, 0, 0, 123456000, time.UTC)
	id := "01a218cc-bafb-7c4e-9a1d-3f5b7e2c8d40"
	positions := []store.Cursor{
		{CreatedAt: at, ID: id},
		{CreatedAt: at.Add(time.Microsecond), ID: id},
		{CreatedAt: at, ID: "01a218cc-bafb-7c4e-9a1d-3f5b7e2c8d41"},
		{CreatedAt: time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: uuid.NewString()},
		{CreatedAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.Nil.String()},
		{CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: uuid.Max.String()},
	}
	seen := map[string]bool{}
	for _, p := range positions {
		c, err := encodeCursor(&p)
		if err != nil {
			t.Fatal(err)
		}
		if seen[c] {
			t.Errorf("%+v: cursor %s is another position's too", p, c)
		}
		seen[c] = true
		got, err := decodeCursor(c)
		if err != nil || !got.CreatedAt.Equal(p.CreatedAt) || got.CreatedAt.Location() != time.UTC || got.ID != p.ID {
			t.Errorf("%+v: cursor %s decodes as %+v, %v", p, c, got, err)
		}
	}
}

// Cursors of the earlier format, an id alone, are refused with a 400 that
// says to list again; so is anything else this server did not issue.
func TestCursorRefusals(t *testing.T) {
	for _, c := range []struct{ cursor, reason string }{
		{base64.RawURLEncoding.EncodeToString([]byte(uuid.NewString())), "list again without a cursor"},
		{"MDFhMjE4ZDItNTgzMC03M2QxLWI1NjQtNDFkZTA2MDA2MDJm", "list again without a cursor"},
		{"AQAGYTDfumZAAaIYzLr7fE6aHT9bfiyNQA==", "is not a cursor this server issued"},   // padded
		{"AgAGYTDfumZAAaIYzLr7fE6aHT9bfiyNQA", "is not a cursor this server issued"},     // another format
		{"AQOERAzMc2AAAaIYzLr7fE6aHT9bfiyNQA", "is not a cursor this server issued"},     // the year 10000
		{"AQAGYTDfumZAAaIYzLr7fE6aHT9bfiyN", "is not a cursor this server issued"},       // too short
		{"AQAGYTDfumZAAaIYz\r\nLr7fE6aHT9bfiyNQA", "is not a cursor this server issued"}, // a line break, which base64 skips
		{"bogus", "is not a cursor this server issued"},
	} {
		_, err := decodeCursor(c.cursor)
		var re *requestError
		if !asRequestError(err, &re) || re.status != http.StatusBadRequest || len(re.fields) != 1 ||
			re.fields[0].Path != "cursor" || !strings.Contains(re.fields[0].Message, c.reason) {
			t.Errorf("cursor %q: got %v (%+v), want a 400 on cursor saying %q", c.cursor, err, re, c.reason)
		}
	}
}
