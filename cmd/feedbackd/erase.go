package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/feedbackd/feedbackd/server/store"
)

// eraseCommand is feedbackd erase: POST /v1/feedback/erase for operators,
// on the store directly, with the same filters, guard and dry run.
func eraseCommand(dbFlag cli.Flag, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "erase",
		Usage: "delete every feedback of a workspace that the filters match, in one transaction",
		Description: "Erases what GET /v1/feedback would list with the same filters (at least one), and prints\n" +
			"how many. More than --max is refused with the count unless --confirm-count states it.\n" +
			"On SQLite the erase holds the writer while it runs: a serving feedbackd's writes wait.",
		Flags: []cli.Flag{
			dbFlag,
			&cli.StringFlag{Name: "workspace", Value: "default", Usage: "the workspace to erase in (by name)"},
			&cli.StringFlag{Name: "user", Usage: "only feedback whose metadata _user is this"},
			&cli.StringFlag{Name: "metadata", Usage: `only feedback whose metadata holds every pair of this JSON object, e.g. {"_environment":"test"}`},
			&cli.StringFlag{Name: "trace-id", Usage: "only feedback of this trace"},
			&cli.StringFlag{Name: "created-after", Usage: "only feedback created at or after this RFC 3339 time"},
			&cli.StringFlag{Name: "created-before", Usage: "only feedback created before this RFC 3339 time"},
			&cli.IntFlag{Name: "value-min", Usage: "only feedback with a value of at least this"},
			&cli.IntFlag{Name: "value-max", Usage: "only feedback with a value of at most this"},
			&cli.BoolFlag{Name: "dry-run", Usage: "only count"},
			&cli.IntFlag{Name: "max", Value: 100_000, Usage: "the most feedback erased without --confirm-count"},
			&cli.IntFlag{Name: "confirm-count", Usage: "erase only when the filters match exactly this many"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return errors.New("erase takes no arguments: the filters are flags")
			}
			f, err := eraseFilter(cmd)
			if err != nil {
				return err
			}
			e := store.Erase{Max: cmd.Int("max"), DryRun: cmd.Bool("dry-run")}
			if cmd.IsSet("confirm-count") {
				n := cmd.Int("confirm-count")
				e.Confirm = &n
			}
			return withStore(ctx, cmd.String("db"), func(st store.Store) error {
				ws, err := workspaceNamed(ctx, st, cmd.String("workspace"))
				if err != nil {
					return err
				}
				n, err := st.EraseFeedback(ctx, ws.ID, f, e, nil)
				if err != nil {
					return err
				}
				if e.DryRun {
					_, err = fmt.Fprintf(stdout, "%d feedback match (dry run: nothing erased)\n", n)
				} else {
					_, err = fmt.Fprintf(stdout, "erased %d feedback\n", n)
				}
				return err
			})
		},
	}
}

// eraseFilter reads the filter flags; at least one is required.
func eraseFilter(cmd *cli.Command) (store.Filter, error) {
	var f store.Filter
	if m := cmd.String("metadata"); m != "" {
		d := json.NewDecoder(strings.NewReader(m))
		d.UseNumber()
		if err := d.Decode(&f.Metadata); err != nil || f.Metadata == nil || d.More() {
			return f, fmt.Errorf("--metadata must be a JSON object, such as {\"_user\":\"user_123\"}")
		}
		for k, v := range f.Metadata {
			switch v.(type) {
			case string, bool, json.Number:
			default:
				return f, fmt.Errorf("--metadata: the value of %q must be a string, number or boolean", k)
			}
		}
	}
	if u := cmd.String("user"); u != "" {
		if f.Metadata == nil {
			f.Metadata = map[string]any{}
		}
		f.Metadata["_user"] = u
	}
	if t := cmd.String("trace-id"); t != "" {
		f.TraceIDs = []string{t}
	}
	for _, b := range []struct {
		flag string
		to   **time.Time
	}{{"created-after", &f.CreatedAfter}, {"created-before", &f.CreatedBefore}} {
		if s := cmd.String(b.flag); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return f, fmt.Errorf("--%s must be an RFC 3339 time such as 2026-11-01T00:00:00Z, not %q", b.flag, s)
			}
			*b.to = &t
		}
	}
	if cmd.IsSet("value-min") {
		v := cmd.Int("value-min")
		f.ValueMin = &v
	}
	if cmd.IsSet("value-max") {
		v := cmd.Int("value-max")
		f.ValueMax = &v
	}
	if f.Metadata == nil && f.TraceIDs == nil && f.CreatedAfter == nil && f.CreatedBefore == nil && f.ValueMin == nil && f.ValueMax == nil {
		return f, errors.New("erase needs at least one filter: --user, --metadata, --trace-id, --created-after, --created-before, --value-min or --value-max")
	}
	return f, nil
}

// workspaceNamed finds a workspace by name without creating it.
func workspaceNamed(ctx context.Context, st store.Store, name string) (*store.Workspace, error) {
	all, err := st.ListWorkspaces(ctx)
	if err != nil {
		return nil, err
	}
	for _, ws := range all {
		if ws.Name == name {
			return ws, nil
		}
	}
	return nil, fmt.Errorf("there is no workspace named %q", name)
}
