package metrics

import (
	"context"
	"time"

	"github.com/feedbackd/feedbackd/server/store"
)

// Store returns st with its errors counted by operation and code, and the
// feedback it stores counted. Methods the server does not call per request
// pass through uncounted.
//
// When st reports on a write-ahead log (walReporter: the SQLite store
// does, PostgreSQL's does not), the WAL's metrics are registered and fed
// from it.
func (m *Metrics) Store(st store.Store) store.Store {
	if m == nil {
		return st
	}
	if w, ok := st.(walReporter); ok {
		m.registerWAL()
		w.SetWALObserver(m.ObserveWAL)
	}
	return &instrumented{Store: st, m: m}
}

// walReporter is a store whose writer reports on its write-ahead log after
// each commit (sqlite.Store.SetWALObserver), with builtin types only, so
// that metrics need not import a driver.
type walReporter interface {
	SetWALObserver(func(commitFrames, walFrames int, checkpoint string))
}

type instrumented struct {
	store.Store
	m *Metrics
}

func (s *instrumented) count(op string, err error) error {
	if err != nil {
		s.m.storeErrors.WithLabelValues(op, codeOf(err)).Inc()
	}
	return err
}

func (s *instrumented) CreateFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) error {
	err := s.count("CreateFeedback", s.Store.CreateFeedback(ctx, fs, idem))
	if err == nil {
		s.m.stored.WithLabelValues("create").Add(float64(len(fs)))
	}
	return err
}

// PutFeedback counts its rows as created: a replaced row is written
// anew.
func (s *instrumented) PutFeedback(ctx context.Context, fs []*store.Feedback, idem *store.Idempotency) (int, error) {
	n, err := s.Store.PutFeedback(ctx, fs, idem)
	if err == nil {
		s.m.stored.WithLabelValues("create").Add(float64(len(fs)))
	}
	return n, s.count("PutFeedback", err)
}

func (s *instrumented) GetFeedback(ctx context.Context, workspaceID, id string) (*store.Feedback, error) {
	f, err := s.Store.GetFeedback(ctx, workspaceID, id)
	return f, s.count("GetFeedback", err)
}

func (s *instrumented) UpdateFeedback(ctx context.Context, workspaceID, id string, u store.Update, idem *store.Idempotency) (*store.Feedback, error) {
	f, err := s.Store.UpdateFeedback(ctx, workspaceID, id, u, idem)
	return f, s.count("UpdateFeedback", err)
}

func (s *instrumented) DeleteFeedback(ctx context.Context, workspaceID, id string) error {
	return s.count("DeleteFeedback", s.Store.DeleteFeedback(ctx, workspaceID, id))
}

func (s *instrumented) EraseFeedback(ctx context.Context, workspaceID string, f store.Filter, e store.Erase, idem *store.Idempotency) (int, error) {
	n, err := s.Store.EraseFeedback(ctx, workspaceID, f, e, idem)
	return n, s.count("EraseFeedback", err)
}

func (s *instrumented) ListFeedback(ctx context.Context, workspaceID string, f store.Filter) (*store.Page, error) {
	p, err := s.Store.ListFeedback(ctx, workspaceID, f)
	return p, s.count("ListFeedback", err)
}

func (s *instrumented) UpsertTokenFeedback(ctx context.Context, tokenID string, f *store.Feedback, idem *store.Idempotency) (*store.Feedback, error) {
	got, err := s.Store.UpsertTokenFeedback(ctx, tokenID, f, idem)
	if err == nil {
		s.m.stored.WithLabelValues("token").Inc()
	}
	return got, s.count("UpsertTokenFeedback", err)
}

// IdempotentResult is not counted as an error when it finds nothing: that
// is the answer for every first use of a key.
func (s *instrumented) IdempotentResult(ctx context.Context, scope, key string) (*store.IdempotentResult, error) {
	r, err := s.Store.IdempotentResult(ctx, scope, key)
	if store.ErrorCode(err) == store.ENOTFOUND {
		return r, err
	}
	return r, s.count("IdempotentResult", err)
}

func (s *instrumented) PurgeIdempotency(ctx context.Context, before time.Time) error {
	return s.count("PurgeIdempotency", s.Store.PurgeIdempotency(ctx, before))
}

func (s *instrumented) FeedbackCells(ctx context.Context, workspaceID string, q store.AnalyticsQuery) ([]store.Cell, error) {
	c, err := s.Store.FeedbackCells(ctx, workspaceID, q)
	return c, s.count("FeedbackCells", err)
}

func (s *instrumented) MetadataGroups(ctx context.Context, workspaceID, key string, q store.AnalyticsQuery, offset, limit int) ([]store.Group, int, error) {
	g, n, err := s.Store.MetadataGroups(ctx, workspaceID, key, q, offset, limit)
	return g, n, s.count("MetadataGroups", err)
}

func (s *instrumented) APIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	k, err := s.Store.APIKeyByHash(ctx, hash)
	return k, s.count("APIKeyByHash", err)
}

func (s *instrumented) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	return s.count("TouchAPIKey", s.Store.TouchAPIKey(ctx, id, at))
}

func (s *instrumented) Ping(ctx context.Context) error {
	return s.count("Ping", s.Store.Ping(ctx))
}
