package postgres_test

import (
	"context"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/postgres"
	"github.com/feedbackd/feedbackd/server/store/postgres/pgtest"
	"github.com/feedbackd/feedbackd/server/store/storetest"
)

// Every test of the contract ends with the derived data checked against
// the rows it left (after the suite closes the store).
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		url := pgtest.NewDatabase(t)
		t.Cleanup(func() { postgres.CheckDerived(t, url) })
		s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return settled{s, t}
	})
}

// settled is a store whose walks of webhook events begin once every
// transaction running on the server when they are asked for has ended.
// A walk takes only the events of transactions below the oldest one
// still running, on the whole server: the contract's walks, which expect
// every write that returned before them, would otherwise miss some while
// another test's transactions (of another database) run.
// TestWalkWaitsForAWriteStillRunning tests the walk itself.
type settled struct {
	*postgres.Store
	t *testing.T
}

func (s settled) ClaimWebhooks(ctx context.Context, now, until time.Time, limit int) ([]*store.Webhook, error) {
	s.settle(ctx)
	return s.Store.ClaimWebhooks(ctx, now, until, limit)
}

func (s settled) NextEvents(ctx context.Context, w *store.Webhook, limit int) ([]*store.Event, error) {
	s.settle(ctx)
	return s.Store.NextEvents(ctx, w, limit)
}

// settle waits, for up to a minute, until the transactions running now
// have ended: the oldest one still running is at least the first one yet
// to start.
func (s settled) settle(ctx context.Context) {
	s.t.Helper()
	conn, err := pgx.Connect(ctx, os.Getenv("FEEDBACKD_TEST_POSTGRES_URL"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var next int64
	if err := conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&next); err != nil {
		s.t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var ended bool
		if err := conn.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $1`, next).Scan(&ended); err != nil {
			s.t.Fatal(err)
		}
		if ended {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("transactions running on the server did not end within a minute")
		}
	}
}

// Replicas starting together on one database migrate it once, and all
// start.
func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = postgres.Migrate(context.Background(), url)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.EnsureWorkspace(context.Background(), "w"); err != nil {
		t.Errorf("migrated schema unusable: %v", err)
	}
}

// Every method, read or write, answers EUNAVAILABLE (503, retry later)
// while the database refuses connections and has ended the store's: the
// store classifies what every method meets, not only some.
func TestEveryMethodIsUnavailableWhileTheDatabaseIsGone(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, err := s.EnsureWorkspace(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}

	admin, err := pgx.Connect(ctx, os.Getenv("FEEDBACKD_TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := pgx.Identifier{strings.TrimPrefix(must(neturl.Parse(url)).Path, "/")}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name.Sanitize()+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name[0]); err != nil {
		t.Fatal(err)
	}

	for _, c := range append(storetest.Reads(ws.ID), storetest.Writes(ws.ID)...) {
		if err := c.Do(ctx, s); store.ErrorCode(err) != store.EUNAVAILABLE {
			t.Errorf("%s while the database is gone: got %v (%s), want %s", c.Method, err, store.ErrorCode(err), store.EUNAVAILABLE)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkErase(b *testing.B) {
	storetest.BenchmarkErase(b, func(b *testing.B) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{MaxConns: 8})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
