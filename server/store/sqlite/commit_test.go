package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/feedbackd/feedbackd/server/store"
)

// BenchmarkCreateOne is the cost of one single-row write committed alone
// (the writer's batch holds it only), on a file of 50,000 rows with make
// bench's kind of metadata: what a single POST waits for when nothing
// shares its commit. It is the figure the open loop's latency follows:
//
//	go test ./server/store/sqlite -run '^$' -bench CreateOne -benchtime 4000x
func BenchmarkCreateOne(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "feedbackd.db"))
	defer s.Close()
	ws, err := s.EnsureWorkspace(ctx, "default")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	feedback := func() *store.Feedback {
		m := map[string]any{"_user": fmt.Sprint("user-", rng.IntN(10_000)), "_prompt": fmt.Sprint("p-", rng.IntN(50))}
		if rng.IntN(2) == 0 {
			m["_organisation"] = fmt.Sprint("org-", rng.IntN(100))
		}
		if rng.IntN(4) > 0 {
			m["_environment"] = []string{"production", "staging", "development"}[rng.IntN(3)]
		}
		if rng.IntN(3) == 0 {
			m["model"] = []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"}[rng.IntN(4)]
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		return &store.Feedback{ID: uuid.Must(uuid.NewV7()).String(), WorkspaceID: ws.ID, TraceID: uuid.NewString(),
			Value: rng.IntN(21) - 10, Weight: 0.5, Metadata: m, CreatedAt: now, UpdatedAt: now}
	}
	for range 50 {
		fs := make([]*store.Feedback, 1000)
		for i := range fs {
			fs[i] = feedback()
		}
		if err := s.CreateFeedback(ctx, fs, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if err := s.CreateFeedback(ctx, []*store.Feedback{feedback()}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
