package postgres_test

import (
	"context"
	"sync"
	"testing"

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
		return s
	})
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
