package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v3"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/webhook"
)

// webhookKeyFlag and allowLoopbackFlag are shared by serve and feedbackd
// webhooks create: both seal secrets and check URLs as the other does.
func webhookKeyFlag(env func(string) cli.ValueSourceChain) cli.Flag {
	return &cli.StringFlag{
		Name: "webhook-key",
		Usage: "the key webhook signing secrets are sealed with: base64 of 32 random bytes (openssl rand -base64 32), kept outside the database; " +
			"without it, a key stored in the database seals them. Every replica needs the same key",
		Sources: env("FEEDBACKD_WEBHOOK_KEY"),
	}
}

func allowLoopbackFlag(env func(string) cli.ValueSourceChain) cli.Flag {
	return &cli.BoolFlag{
		Name:    "webhooks-allow-loopback",
		Usage:   "let webhooks deliver to loopback addresses, also over plain http (tests, local development); never in production",
		Sources: env("FEEDBACKD_WEBHOOKS_ALLOW_LOOPBACK"),
	}
}

// webhookKeyring is the keyring --webhook-key names, or else the one keyed
// with the store's own secret.
func webhookKeyring(ctx context.Context, st store.Store, key string) (*webhook.Keyring, error) {
	if key == "" {
		return server.StoreKeyring(ctx, st)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
	if err != nil || len(raw) != webhook.KeySize {
		return nil, fmt.Errorf("--webhook-key must be the base64 of %d bytes (openssl rand -base64 %d)", webhook.KeySize, webhook.KeySize)
	}
	return webhook.NewKeyring(raw)
}

// webhooksCommand is feedbackd webhooks: operators list, create and
// delete webhooks on the store directly, across workspaces.
func webhooksCommand(dbFlag cli.Flag, env func(string) cli.ValueSourceChain, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "webhooks",
		Usage: "list, create and delete webhooks",
		Commands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the webhooks of every workspace, or of one (never their secrets)",
				Flags: []cli.Flag{dbFlag, &cli.StringFlag{Name: "workspace", Usage: "only this workspace's (by name)"}},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() > 0 {
						return errors.New("webhooks list takes no arguments")
					}
					return withStore(ctx, cmd.String("db"), func(st store.Store) error {
						return listWebhooks(ctx, st, cmd.String("workspace"), stdout)
					})
				},
			},
			{
				Name:  "create",
				Usage: "create a webhook and print its id, then its signing secret, shown only this once",
				Description: "The URL must be https (plain http to a loopback host only with --webhooks-allow-loopback).\n" +
					"The webhook gets the events of the writes that commit after it is created.",
				Flags: []cli.Flag{
					dbFlag,
					&cli.StringFlag{Name: "workspace", Value: "default", Usage: "the workspace whose events it gets (by name)"},
					&cli.StringFlag{Name: "url", Required: true, Usage: "where events are POSTed"},
					&cli.StringFlag{Name: "events", Value: "feedback.created,feedback.updated,feedback.deleted", Usage: "comma-separated event types"},
					&cli.StringFlag{Name: "filter-metadata", Usage: `only events whose feedback's metadata holds every pair of this JSON object, e.g. {"_environment":"production"}`},
					&cli.StringFlag{Name: "filter-trace-id", Usage: "only events of this trace's feedback"},
					&cli.IntFlag{Name: "filter-value-min", Usage: "only events of feedback with a value of at least this"},
					&cli.IntFlag{Name: "filter-value-max", Usage: "only events of feedback with a value of at most this"},
					&cli.StringFlag{Name: "description", Usage: "a note for people"},
					webhookKeyFlag(env),
					allowLoopbackFlag(env),
				},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() > 0 {
						return errors.New("webhooks create takes no arguments: the webhook is described by flags")
					}
					kinds, err := eventKinds(cmd.String("events"))
					if err != nil {
						return err
					}
					filter, err := webhookFilterFlags(cmd)
					if err != nil {
						return err
					}
					if utf8.RuneCountInString(cmd.String("description")) > 256 {
						return errors.New("--description must be at most 256 characters")
					}
					return withStore(ctx, cmd.String("db"), func(st store.Store) error {
						ws, err := workspaceNamed(ctx, st, cmd.String("workspace"))
						if err != nil {
							return err
						}
						keyring, err := webhookKeyring(ctx, st, cmd.String("webhook-key"))
						if err != nil {
							return err
						}
						w, secret, err := server.NewWebhook(ws.ID, cmd.String("url"), kinds, filter, cmd.String("description"),
							keyring, cmd.Bool("webhooks-allow-loopback"), time.Now())
						if err != nil {
							return fmt.Errorf("--url: %s", store.ErrorMessage(err))
						}
						if err := st.CreateWebhook(ctx, w); err != nil {
							return err
						}
						_, err = fmt.Fprintf(stdout, "%s\n%s\n", w.ID, secret)
						return err
					})
				},
			},
			{
				Name:      "delete",
				Usage:     "delete a webhook by id; its waiting events are not delivered",
				ArgsUsage: "WEBHOOK_ID",
				Flags:     []cli.Flag{dbFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					id := cmd.Args().First()
					if id == "" || cmd.Args().Len() != 1 {
						return errors.New("webhooks delete takes exactly one webhook id (see webhooks list)")
					}
					return withStore(ctx, cmd.String("db"), func(st store.Store) error {
						all, err := st.ListWebhooks(ctx, "")
						if err != nil {
							return err
						}
						for _, w := range all {
							if w.ID == id {
								if err := st.DeleteWebhook(ctx, w.WorkspaceID, id); err != nil {
									return err
								}
								_, err := fmt.Fprintf(stdout, "deleted %s\n", id)
								return err
							}
						}
						return fmt.Errorf("there is no webhook %q", id)
					})
				},
			},
		},
	}
}

// eventKinds reads a comma-separated list of wire event names.
func eventKinds(list string) ([]store.EventKind, error) {
	var kinds []store.EventKind
	for _, name := range splitList(list) {
		k, ok := server.EventKindNamed(name)
		if !ok {
			return nil, fmt.Errorf("--events: %q is not an event type (feedback.created, feedback.updated, feedback.deleted)", name)
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil, errors.New("--events must name at least one event type")
	}
	return kinds, nil
}

// webhookFilterFlags reads the --filter-* flags, with the API's meaning.
func webhookFilterFlags(cmd *cli.Command) (store.Filter, error) {
	var f store.Filter
	if m := cmd.String("filter-metadata"); m != "" {
		d := json.NewDecoder(strings.NewReader(m))
		d.UseNumber()
		if err := d.Decode(&f.Metadata); err != nil || f.Metadata == nil || d.More() {
			return f, errors.New(`--filter-metadata must be a JSON object, such as {"_environment":"production"}`)
		}
		for k, v := range f.Metadata {
			switch v.(type) {
			case string, bool, json.Number:
			default:
				return f, fmt.Errorf("--filter-metadata: the value of %q must be a string, number or boolean", k)
			}
		}
	}
	if t := cmd.String("filter-trace-id"); t != "" {
		f.TraceIDs = []string{t}
	}
	for _, b := range []struct {
		flag string
		to   **int
	}{{"filter-value-min", &f.ValueMin}, {"filter-value-max", &f.ValueMax}} {
		if cmd.IsSet(b.flag) {
			v := cmd.Int(b.flag)
			if v < -10 || v > 10 {
				return f, fmt.Errorf("--%s must be from -10 to 10", b.flag)
			}
			*b.to = &v
		}
	}
	return f, nil
}

func listWebhooks(ctx context.Context, st store.Store, workspace string, w io.Writer) error {
	names := map[string]string{}
	all, err := st.ListWorkspaces(ctx)
	if err != nil {
		return err
	}
	var only string
	for _, ws := range all {
		names[ws.ID] = ws.Name
		if ws.Name == workspace {
			only = ws.ID
		}
	}
	if workspace != "" && only == "" {
		return fmt.Errorf("there is no workspace named %q", workspace)
	}
	hooks, err := st.ListWebhooks(ctx, only)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKSPACE\tURL\tEVENTS\tSTATUS\tCREATED\tDESCRIPTION")
	for _, h := range hooks {
		events := make([]string, len(h.Kinds))
		for i, k := range h.Kinds {
			events[i] = server.EventName(k)
		}
		status := string(h.State)
		if h.StateReason != "" {
			status += " (" + h.StateReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, names[h.WorkspaceID], h.URL, strings.Join(events, ","),
			status, h.CreatedAt.Format(time.RFC3339), orDash(h.Description))
	}
	return tw.Flush()
}
