package main

import (
	"context"
	"database/sql"
	"errors"

	_ "modernc.org/sqlite"
)

// bodyStore appends request bodies to a bare SQLite table through one
// writer goroutine: each commit holds every body waiting when it begins
// (group commit, as feedbackd's writer does), and each request is answered
// once its commit is durable.
type bodyStore struct {
	db       *sql.DB
	insert   *sql.Stmt
	requests chan appendRequest
	done     chan struct{}
}

type appendRequest struct {
	body []byte
	errc chan error
}

func openBodyStore(path string) (*bodyStore, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS bodies (body BLOB NOT NULL)`); err != nil {
		db.Close()
		return nil, err
	}
	// Prepared before any transaction: one connection cannot prepare while
	// its transaction is open.
	insert, err := db.Prepare(`INSERT INTO bodies (body) VALUES (?)`)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &bodyStore{db: db, insert: insert, requests: make(chan appendRequest, 4096), done: make(chan struct{})}
	go s.write()
	return s, nil
}

// append stores body durably, or says why not.
func (s *bodyStore) append(ctx context.Context, body []byte) error {
	r := appendRequest{body: body, errc: make(chan error, 1)}
	select {
	case s.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.errc
}

func (s *bodyStore) write() {
	defer close(s.done)
	for first := range s.requests {
		batch := []appendRequest{first}
	more:
		for len(batch) < 1000 {
			select {
			case r, ok := <-s.requests:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := s.commit(batch)
		for _, r := range batch {
			r.errc <- err
		}
	}
}

func (s *bodyStore) commit(batch []appendRequest) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insert := tx.Stmt(s.insert)
	for _, r := range batch {
		if _, err := insert.Exec(r.body); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// close stops the writer after what is queued, then closes the file. The
// server has stopped taking requests by then.
func (s *bodyStore) close() error {
	close(s.requests)
	<-s.done
	return errors.Join(s.insert.Close(), s.db.Close())
}
