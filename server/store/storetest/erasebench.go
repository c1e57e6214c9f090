package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/feedbackd/feedbackd/server/store"
)

// BenchmarkErase times erasing one user's feedback, n rows, from a
// workspace that holds as many rows of other users on the same traces:
// spread over 1,000 traces, and all on one trace. An erase is linear in
// what it erases when the time per erased row (µs/row) stays the same
// across n and across both shapes. Each run fills a new store first,
// untimed; run it with -benchtime 1x:
//
//	go test ./server/store/sqlite -run '^$' -bench Erase -benchtime 1x
func BenchmarkErase(b *testing.B, open func(b *testing.B) store.Store) {
	for _, n := range []int{10_000, 100_000} {
		for _, shape := range []struct {
			name   string
			traces int
		}{{"spread over 1000 traces", 1000}, {"one trace", 1}} {
			b.Run(fmt.Sprintf("%d rows %s", n, shape.name), func(b *testing.B) {
				ctx := context.Background()
				runs := 0
				for b.Loop() {
					runs++
					b.StopTimer()
					s := open(b)
					ws, err := s.EnsureWorkspace(ctx, "bench")
					if err != nil {
						b.Fatal(err)
					}
					for start := 0; start < 2*n; start += 1000 {
						batch := make([]*store.Feedback, 0, 1000)
						for i := start; i < start+1000 && i < 2*n; i++ {
							user := "kept"
							if i%2 == 0 {
								user = "gone"
							}
							trace := fmt.Sprint("trace-", (i/2)%shape.traces)
							batch = append(batch, feedback(ws.ID, i, trace, i%21-10, map[string]any{"_user": user, "_prompt": fmt.Sprint("p", i%7)}))
						}
						if err := s.CreateFeedback(ctx, batch, nil); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					erased, err := s.EraseFeedback(ctx, ws.ID, store.Filter{Metadata: map[string]any{"_user": "gone"}}, store.Erase{Max: n}, nil)
					b.StopTimer()
					if err != nil || erased != n {
						b.Fatalf("erased %d, %v; want %d", erased, err, n)
					}
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(runs*n), "µs/row")
			})
		}
	}
}
