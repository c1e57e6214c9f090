package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v3"

	"github.com/feedbackd/feedbackd/server"
	"github.com/feedbackd/feedbackd/server/apikey"
	"github.com/feedbackd/feedbackd/server/metrics"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/rollup"
	"github.com/feedbackd/feedbackd/server/store/sqlite"
	"github.com/feedbackd/feedbackd/server/webhook"
)

// envSource reads a flag's value from the environment through the injected
// getenv, so tests control the environment without touching the process's.
type envSource struct {
	key    string
	getenv func(string) string
}

// Lookup and the methods below make envSource a cli.ValueSource (and an
// EnvValueSource, so help shows the variable).
func (e envSource) Lookup() (string, bool) {
	v := e.getenv(e.key)
	return v, v != ""
}
func (e envSource) String() string   { return fmt.Sprintf("environment variable %q", e.key) }
func (e envSource) GoString() string { return fmt.Sprintf("envSource{%q}", e.key) }
func (e envSource) IsFromEnv() bool  { return true }
func (e envSource) Key() string      { return e.key }

func newApp(getenv func(string) string, stdout, stderr io.Writer) *cli.Command {
	env := func(key string) cli.ValueSourceChain { return cli.NewValueSourceChain(envSource{key, getenv}) }
	dbFlag := &cli.StringFlag{
		Name:    "db",
		Value:   "feedbackd.db",
		Usage:   "the SQLite database file (created when missing), or a postgres:// URL",
		Sources: env("FEEDBACKD_DB"),
	}
	poolFlag := &cli.IntFlag{
		Name:    "db-pool-size",
		Usage:   "the most connections to PostgreSQL (default: pgx's, or the URL's pool_max_conns)",
		Sources: env("FEEDBACKD_DB_POOL_SIZE"),
	}
	return &cli.Command{
		Name:  "feedbackd",
		Usage: "a self-hosted feedback service for LLM applications, wire-compatible with Portkey's Feedback API",
		Description: "feedbackd collects weighted feedback (value -10..10, weight 0..1, free metadata) on requests\n" +
			"an application served, identified by trace id. Every flag can also be set from the\n" +
			"environment variable shown beside it.",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			{
				Name:  "serve",
				Usage: "serve the API",
				Description: "Serves the API on --addr, storing feedback in --db. On first start against an empty\n" +
					"database it creates the workspace \"default\" with one API key and prints the key once;\n" +
					"FEEDBACKD_BOOTSTRAP_KEY sets that key instead. SIGINT or SIGTERM shut down gracefully.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8787", Usage: "the address to listen on", Sources: env("FEEDBACKD_ADDR")},
					dbFlag,
					poolFlag,
					&cli.StringFlag{Name: "bootstrap-key", Usage: "the first API key to create on an empty database", Sources: env("FEEDBACKD_BOOTSTRAP_KEY")},
					&cli.Int64Flag{Name: "body-limit", Value: 1 << 20, Usage: "the largest request body in bytes", Sources: env("FEEDBACKD_BODY_LIMIT")},
					&cli.Int64Flag{Name: "body-budget", Value: 2 << 20, Usage: "the bytes of request bodies handled at once (at least --body-limit); requests beyond it wait their turn, which bounds memory under bulk load", Sources: env("FEEDBACKD_BODY_BUDGET")},
					&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", Sources: env("FEEDBACKD_LOG_LEVEL")},
					&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "text, json, or auto: text when stderr is a terminal, JSON otherwise", Sources: env("FEEDBACKD_LOG_FORMAT")},
					&cli.BoolFlag{Name: "metrics", Value: true, Usage: "serve Prometheus metrics at /metrics on --addr (without authentication); --metrics=false turns them off", Sources: env("FEEDBACKD_METRICS")},
					&cli.StringFlag{Name: "cors-origins", Usage: "comma-separated origins browsers may submit token feedback from (default: any)", Sources: env("FEEDBACKD_CORS_ORIGINS")},
					&cli.FloatFlag{Name: "rate-limit", Usage: "requests a second each API key and each feedback token may make, in bursts of as many; 0 is off", Sources: env("FEEDBACKD_RATE_LIMIT")},
					&cli.StringFlag{Name: "public-url", Usage: "the URL clients reach this server at, for feedback token links (default: each request's own)", Sources: env("FEEDBACKD_PUBLIC_URL")},
					&cli.DurationFlag{Name: "header-timeout", Value: 10 * time.Second, Usage: "how long a client may take to send a request's headers", Sources: env("FEEDBACKD_HEADER_TIMEOUT")},
					&cli.DurationFlag{Name: "read-timeout", Value: 30 * time.Second, Usage: "how long a client may take to send a whole request", Sources: env("FEEDBACKD_READ_TIMEOUT")},
					&cli.DurationFlag{Name: "write-timeout", Value: 30 * time.Second, Usage: "how long answering a request may take; one still at work a second before is stopped and answered 503", Sources: env("FEEDBACKD_WRITE_TIMEOUT")},
					&cli.DurationFlag{Name: "idle-timeout", Value: 2 * time.Minute, Usage: "how long an idle keep-alive connection is kept", Sources: env("FEEDBACKD_IDLE_TIMEOUT")},
					&cli.StringFlag{Name: "model-keys", Value: strings.Join(rollup.DefaultModelKeys, ","), Usage: "the metadata keys a feedback's AI model is read from, first first (GET /v1/analytics/graphs/feedbacks/ai-models); a change rebuilds the model rollups at start, and every replica must run with the same keys", Sources: env("FEEDBACKD_MODEL_KEYS")},
					&cli.IntFlag{Name: "erase-max", Value: 100_000, Usage: "the most feedback POST /v1/feedback/erase removes without a confirm_count that states the count", Sources: env("FEEDBACKD_ERASE_MAX")},
					webhookKeyFlag(env),
					allowLoopbackFlag(env),
					&cli.DurationFlag{Name: "webhook-timeout", Value: webhook.DefaultTimeout, Usage: "how long a webhook's receiver may take to answer one delivery before it counts as failed and is retried", Sources: env("FEEDBACKD_WEBHOOK_TIMEOUT")},
					&cli.IntFlag{Name: "webhook-concurrency", Value: webhook.DefaultConcurrency, Usage: "the most webhook deliveries in flight at once from this replica (one per webhook at a time)", Sources: env("FEEDBACKD_WEBHOOK_CONCURRENCY")},
					&cli.DurationFlag{Name: "webhook-retention", Value: webhook.DefaultRetention, Usage: "how long delivered and given-up webhook events, and delivery attempts, are kept (for GET .../deliveries and redelivery)", Sources: env("FEEDBACKD_WEBHOOK_RETENTION")},
					&cli.StringFlag{Name: "pprof-addr", Usage: "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty", Sources: env("FEEDBACKD_PPROF_ADDR")},
				},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					return serve(ctx, cmd, stdout, stderr)
				},
			},
			{
				Name:  "migrate",
				Usage: "apply the database migrations and exit",
				Description: "serve applies them too on every start; migrate lets a deployment run them once,\n" +
					"before starting replicas. On PostgreSQL they run under a lock, so concurrent runs are safe.",
				Flags: []cli.Flag{dbFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if err := migrate(ctx, cmd.String("db")); err != nil {
						return err
					}
					_, err := fmt.Fprintln(stdout, "migrations applied")
					return err
				},
			},
			{
				Name:        "version",
				Usage:       "print the release, the commit it was built from, and the Go version",
				Description: "The release is the version of the API contract the binary serves (CHANGELOG.md lists them).",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					v, err := version()
					if err != nil {
						return err
					}
					_, err = fmt.Fprintln(stdout, v)
					return err
				},
			},
			exportCommand(dbFlag, stdout, stderr),
			importCommand(dbFlag, stdout, stderr),
			backupCommand(dbFlag, stdout),
			restoreCommand(dbFlag, stdout),
			eraseCommand(dbFlag, stdout),
			webhooksCommand(dbFlag, env, stdout),
			{
				Name:  "keys",
				Usage: "create, list and revoke API keys",
				Commands: []*cli.Command{
					{
						Name:        "create",
						Usage:       "create an API key and print it as the only line on stdout",
						Description: "The key is shown only here: feedbackd stores only its hash.",
						Flags: []cli.Flag{
							dbFlag,
							&cli.StringFlag{Name: "workspace", Value: "default", Usage: "the workspace the key acts for (created when missing)", Sources: env("FEEDBACKD_WORKSPACE")},
							&cli.StringFlag{Name: "name", Usage: "a label for the key"},
							&cli.DurationFlag{Name: "expires-in", Usage: "make the key expire after this long (e.g. 720h); never when unset"},
						},
						Action: func(ctx context.Context, cmd *cli.Command) error {
							return withStore(ctx, cmd.String("db"), func(st store.Store) error {
								var expires *time.Time
								if d := cmd.Duration("expires-in"); d > 0 {
									t := time.Now().Add(d)
									expires = &t
								}
								key, err := createKey(ctx, st, cmd.String("workspace"), cmd.String("name"), "", expires)
								if err != nil {
									return err
								}
								_, err = fmt.Fprintln(stdout, key)
								return err
							})
						},
					},
					{
						Name:  "list",
						Usage: "list API keys (never their secrets)",
						Flags: []cli.Flag{dbFlag},
						Action: func(ctx context.Context, cmd *cli.Command) error {
							return withStore(ctx, cmd.String("db"), func(st store.Store) error {
								return listKeys(ctx, st, stdout)
							})
						},
					},
					{
						Name:      "revoke",
						Usage:     "revoke an API key by id, with immediate effect",
						ArgsUsage: "KEY_ID",
						Flags:     []cli.Flag{dbFlag},
						Action: func(ctx context.Context, cmd *cli.Command) error {
							id := cmd.Args().First()
							if id == "" || cmd.Args().Len() != 1 {
								return errors.New("keys revoke takes exactly one key id (see keys list)")
							}
							return withStore(ctx, cmd.String("db"), func(st store.Store) error {
								if err := st.RevokeAPIKey(ctx, id, time.Now()); err != nil {
									return err
								}
								_, err := fmt.Fprintf(stdout, "revoked %s\n", id)
								return err
							})
						},
					},
				},
			},
		},
	}
}

// isPostgres says whether --db names a PostgreSQL database.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openStore opens the store named by --db, applying its migrations.
func openStore(ctx context.Context, db string, poolSize int) (store.Store, error) {
	if isPostgres(db) {
		return postgres.Open(ctx, db, postgres.Options{MaxConns: int32(poolSize)})
	}
	return sqlite.Open(ctx, db)
}

// migrate applies the migrations of the store named by --db.
func migrate(ctx context.Context, db string) error {
	if isPostgres(db) {
		return postgres.Migrate(ctx, db)
	}
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	return st.Close()
}

func withStore(ctx context.Context, db string, fn func(store.Store) error) error {
	st, err := openStore(ctx, db, 2)
	if err != nil {
		return err
	}
	return errors.Join(fn(st), st.Close())
}

var errKeyExists = errors.New("that key already exists")

// createKey stores a new key for workspace (creating the workspace when
// missing) and returns the secret. secret is generated when empty.
func createKey(ctx context.Context, st store.Store, workspace, name, secret string, expires *time.Time) (string, error) {
	if strings.TrimSpace(workspace) == "" {
		return "", errors.New("a workspace name is required")
	}
	ws, err := st.EnsureWorkspace(ctx, workspace)
	if err != nil {
		return "", err
	}
	hash := apikey.Hash(secret)
	if secret == "" {
		secret, hash = apikey.Generate()
	}
	k := &store.APIKey{
		ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, Name: name, Hash: hash,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond), ExpiresAt: expires,
	}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		if store.ErrorCode(err) == store.ECONFLICT {
			return "", errKeyExists
		}
		return "", err
	}
	return secret, nil
}

func listKeys(ctx context.Context, st store.Store, w io.Writer) error {
	keys, err := st.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKSPACE\tNAME\tCREATED\tLAST USED\tEXPIRES\tSTATUS")
	for _, k := range keys {
		status := "active"
		switch {
		case k.RevokedAt != nil:
			status = "revoked"
		case k.ExpiresAt != nil && !time.Now().Before(*k.ExpiresAt):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.WorkspaceName, orDash(k.Name),
			k.CreatedAt.Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.ExpiresAt), status)
	}
	return tw.Flush()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// serve runs the API until ctx ends, then shuts down gracefully: the
// listener closes, in-flight requests finish, and the store commits every
// write it acknowledged before it closes.
func serve(ctx context.Context, cmd *cli.Command, stdout, stderr io.Writer) error {
	logger, err := newLogger(stderr, cmd.String("log-format"), cmd.String("log-level"))
	if err != nil {
		return err
	}

	if cmd.Int("db-pool-size") < 0 {
		return errors.New("--db-pool-size must not be negative")
	}
	st, err := openStore(ctx, cmd.String("db"), cmd.Int("db-pool-size"))
	if err != nil {
		return err
	}
	defer st.Close()
	keyring, err := webhookKeyring(ctx, st, cmd.String("webhook-key"))
	if err != nil {
		return err
	}
	keys := strings.Split(cmd.String("model-keys"), ",")
	if err := rollup.CheckModelKeys(keys); err != nil {
		return fmt.Errorf("--model-keys: %w", err)
	}
	rebuilt, err := st.SetModelKeys(ctx, keys)
	if err != nil {
		return fmt.Errorf("--model-keys: %w", err)
	}
	if rebuilt {
		logger.Info("model rollups rebuilt", slog.String("model_keys", cmd.String("model-keys")))
	}
	var m *metrics.Metrics
	if cmd.Bool("metrics") {
		m = metrics.New()
		if o, ok := st.(interface{ SetCommitObserver(store.CommitObserver) }); ok {
			o.SetCommitObserver(m.ObserveCommit)
		}
	}

	ln, err := net.Listen("tcp", cmd.String("addr"))
	if err != nil {
		return err
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()

	if err := bootstrap(ctx, st, cmd.String("bootstrap-key"), exampleURL(ln.Addr(), cmd.String("public-url")), stdout); err != nil {
		return err
	}
	if cmd.Float("rate-limit") < 0 {
		return errors.New("--rate-limit must not be negative")
	}
	e, err := server.New(ctx, server.Config{
		Store:       st,
		Logger:      logger,
		BodyLimit:   cmd.Int64("body-limit"),
		BodyBudget:  cmd.Int64("body-budget"),
		CORSOrigins: splitList(cmd.String("cors-origins")),
		RateLimit:   cmd.Float("rate-limit"),
		PublicURL:   cmd.String("public-url"),
		Metrics:     m,
		// A request still working near the write timeout could not be
		// answered: stop it while a 503 can still be written.
		RequestTimeout:        requestTimeout(cmd.Duration("write-timeout")),
		EraseMax:              cmd.Int("erase-max"),
		WebhookKeyring:        keyring,
		WebhooksAllowLoopback: cmd.Bool("webhooks-allow-loopback"),
	})
	if err != nil {
		return err
	}
	// Slow or stalled clients are cut off by these timeouts, so they cannot
	// hold connections (and goroutines) that normal clients need.
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: cmd.Duration("header-timeout"),
		ReadTimeout:       cmd.Duration("read-timeout"),
		WriteTimeout:      cmd.Duration("write-timeout"),
		IdleTimeout:       cmd.Duration("idle-timeout"),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if addr := cmd.String("pprof-addr"); addr != "" {
		// The profiler has its own listener, so it is never exposed on the
		// API's address by accident.
		pl, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("--pprof-addr: %w", err)
		}
		defer pl.Close()
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { _ = http.Serve(pl, mux) }()
		logger.Info("profiler listening", slog.String("addr", pl.Addr().String()))
	}
	if cmd.Duration("webhook-timeout") <= 0 || cmd.Int("webhook-concurrency") <= 0 || cmd.Duration("webhook-retention") <= 0 {
		return errors.New("--webhook-timeout, --webhook-concurrency and --webhook-retention must be positive")
	}
	// The dispatcher reads the outbox the writes fill; it never touches
	// the write path, so a slow receiver cannot slow ingestion.
	rel, err := release()
	if err != nil {
		return err
	}
	dispatcher, err := webhook.Start(ctx, webhook.Config{
		Store: st, Keyring: keyring, Body: server.EventBody, AllowLoopback: cmd.Bool("webhooks-allow-loopback"),
		Timeout: cmd.Duration("webhook-timeout"), Concurrency: cmd.Int("webhook-concurrency"),
		Retention: cmd.Duration("webhook-retention"), Logger: logger, Metrics: m, Version: rel,
	})
	if err != nil {
		return err
	}
	defer dispatcher.Close()
	fmt.Fprintf(stdout, "feedbackd listening on %s (API at %s/v1, dashboard at %s/)\n", base, base, base)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// After the last request, before the store: a delivery in flight
	// finishes (or is cut off at --webhook-timeout and delivered again
	// after the next start).
	dispatcher.Close()
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// bootstrap gives an empty database its first workspace and key, and prints
// the key once with a ready-to-paste curl line.
func bootstrap(ctx context.Context, st store.Store, secret, base string, stdout io.Writer) error {
	n, err := st.CountAPIKeys(ctx)
	if err != nil || n > 0 {
		return err
	}
	if secret != "" && len(secret) < 16 {
		return errors.New("FEEDBACKD_BOOTSTRAP_KEY must be at least 16 characters long")
	}
	key, err := createKey(ctx, st, "default", "bootstrap", secret, nil)
	if errors.Is(err, errKeyExists) {
		return nil // another replica, starting at the same time, made it
	}
	if err != nil {
		return err
	}
	if secret != "" {
		fmt.Fprintln(stdout, "Created workspace \"default\" with the key from FEEDBACKD_BOOTSTRAP_KEY.")
		return nil
	}
	fmt.Fprintf(stdout, `Created workspace "default" and its first API key. It is shown only this once:

    %s

Try it:
    curl -s %s/v1/feedback -H 'x-portkey-api-key: %s' \
      -H 'Content-Type: application/json' -d '{"trace_id":"trace-1","value":5}'

`, key, base, key)
	return nil
}

// exampleURL is the server's URL in the first key's example request:
// --public-url when set, else the address listened on, but localhost for
// an unspecified one (0.0.0.0, as in the container image): a client cannot
// send to http://[::]:8787, and a port published on 127.0.0.1 only is not
// reachable at ::1.
func exampleURL(addr net.Addr, publicURL string) string {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	if a, ok := addr.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		return fmt.Sprintf("http://localhost:%d", a.Port)
	}
	return "http://" + addr.String()
}

// requestTimeout is how long a request may work when answers must be
// written within writeTimeout: a second less (half of a short one), so
// the 503 still reaches the client. Zero (no write timeout) is no limit.
func requestTimeout(writeTimeout time.Duration) time.Duration {
	return max(writeTimeout-time.Second, writeTimeout/2)
}
