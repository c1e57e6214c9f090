// Package baseline is what both stores do before migrating: refuse a
// database made by a build older than their first migration. Each store's
// schema starts from one baseline migration with the same version in both,
// and earlier builds' migrations are not replayed; their databases move
// over through feedbackd export and import.
package baseline

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3"
)

// Check returns an error for a database that has migrations applied from
// before p's first one, and nil for a new or current database.
func Check(ctx context.Context, p *goose.Provider) error {
	sources := p.ListSources()
	if len(sources) == 0 {
		return nil
	}
	have, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if want := sources[0].Version; have > 0 && have < want {
		return fmt.Errorf("this database was made by an earlier build of feedbackd (schema version %d; this build starts at %d): "+
			"export it with that build (feedbackd export --db ... > all.ndjson) and import the file into a new database with this one (feedbackd import --db ... all.ndjson)", have, want)
	}
	return nil
}
