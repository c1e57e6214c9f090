package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A hot trace is one trace id of one workspace with many feedback: a whole
// conversation, an eval pipeline scoring one trace again and again, or a
// client misconfigured to send one constant trace id. A write must cost the
// same however many rows its trace already has, so the hot mode times each
// kind of write on a trace of -hot-rows feedback against the same write on
// a new or small trace, and -hot-share sends part of the open loop to one.

// hotUsers is how many distinct _user values the hot trace's feedback has.
const hotUsers = 1000

// hotOps is the hot mode: it fills one trace with cfg.hotRows feedback,
// posted in bulks of bulkSize, then, with one client and one request at a
// time, times cfg.hotOps operations of each kind on that trace, each
// alternating with the same operation on a new or small trace, so that
// whatever else the machine does hits both alike:
//
//   - a single POST to the hot trace, and to a new trace;
//   - PUT of the hot trace's first feedback (its oldest), and of the first
//     feedback of a trace of two;
//   - a re-vote with a feedback token, whose feedback is the hot trace's
//     first, and with a token on a trace of one;
//   - DELETE of the hot trace's first feedback, each delete making the next
//     one the first, and of the first of a trace of two;
//   - a bulk of bulkSize to the hot trace (the trace grows by as many each
//     time, so this runs last), and to a new trace.
//
// Each update changes the value and _user of a trace's first feedback, and
// each delete removes it: what a trace's first feedback counts for in the
// analytics must then move, the most a write can ask of a trace's
// bookkeeping.
func hotOps(ctx context.Context, cfg config, backend string, sv servers, c *corpus) ([]run, error) {
	api := newAPIClient(sv.fd.url)
	gen := newSkewed(1)
	n := cfg.hotOps
	trace := "hot-" + c.prefix

	// The hot trace's first feedback is a token's, so that a re-vote
	// changes the first feedback of the trace.
	hotToken, first, err := tokenFeedback(ctx, api, trace, gen)
	if err != nil {
		return nil, fmt.Errorf("%s: the hot trace's token: %w", backend, err)
	}
	ids := []string{first}
	more, err := fillHot(ctx, api, backend, trace, cfg.hotRows-1, gen)
	if err != nil {
		return nil, fmt.Errorf("%s: fill the hot trace: %w", backend, err)
	}
	ids = append(ids, more...)
	if err := checkFirst(ctx, api, trace, ids[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", backend, err)
	}
	pairs, err := smallTraces(ctx, api, c, gen, n)
	if err != nil {
		return nil, fmt.Errorf("%s: the traces of two: %w", backend, err)
	}
	smallToken, smallFirst, err := tokenFeedback(ctx, api, c.newTrace("small"), gen)
	if err != nil {
		return nil, fmt.Errorf("%s: the small trace's token: %w", backend, err)
	}

	rows := len(ids)
	users := map[string]string{} // the _user each updated feedback has now, by id
	put := func(id string, i int) request {
		users[id] = gen.otherUser(users[id])
		return request{method: http.MethodPut, path: "/v1/feedback/" + id, body: mustJSON(map[string]any{
			"value": flip(i), "metadata": gen.metadata(users[id]),
		})}
	}
	revote := func(token, id string, i int) request {
		users[id] = gen.otherUser(users[id])
		return request{method: http.MethodPost, path: "/v1/feedback/tokens/" + token, token: true, body: mustJSON(map[string]any{
			"value": flip(i), "metadata": map[string]string{"_user": users[id]},
		})}
	}
	post := func(body []byte) request { return request{method: http.MethodPost, path: "/v1/feedback", body: body} }
	del := func(id string) request { return request{method: http.MethodDelete, path: "/v1/feedback/" + id} }

	var runs []run
	for _, op := range []struct {
		name, other string
		hot, cmp    func(i int) request
		// rows is how many rows a successful hot operation adds.
		rows int
	}{
		{"single POST", "new trace",
			func(int) request { return post(gen.item(trace)) },
			func(int) request { return post(gen.item(c.newTrace("new"))) }, 1},
		{"PUT of the first feedback", "trace of 2",
			func(i int) request { return put(ids[0], i) },
			func(i int) request { return put(pairs[i], i) }, 0},
		{"token re-vote (first feedback)", "trace of 1",
			func(i int) request { return revote(hotToken, ids[0], i) },
			func(i int) request { return revote(smallToken, smallFirst, i) }, 0},
		{"DELETE of the first feedback", "trace of 2",
			func(i int) request { return del(ids[i]) },
			func(i int) request { return del(pairs[i]) }, -1},
		{fmt.Sprintf("bulk POST of %d", bulkSize), "new trace",
			func(int) request { return post(gen.bulk(trace, bulkSize)) },
			func(int) request { return post(gen.bulk(c.newTrace("new"), bulkSize)) }, bulkSize},
	} {
		if err := sv.fd.alive(); err != nil {
			return runs, err
		}
		hot, cmp, err := alternateOps(ctx, api, n, op.hot, op.cmp)
		hot.op, hot.shape, hot.rows = op.name, "hot trace", rows
		cmp.op, cmp.shape, cmp.rows = op.name, op.other, rows
		runs = append(runs, hot, cmp)
		if err != nil {
			return runs, err
		}
		fmt.Fprintf(os.Stderr, "%-8s hot       %-32s %7d rows: p50 %s p90 %s  vs %s: p50 %s p90 %s  %d failed\n",
			backend, op.name, rows, ms(hot.p50), ms(hot.p90), op.other, ms(cmp.p50), ms(cmp.p90), hot.sent-hot.ok+cmp.sent-cmp.ok)
		rows += op.rows * hot.ok
	}
	return runs, nil
}

// flip is the value of the i-th update: it changes every time.
func flip(i int) int {
	if i%2 == 0 {
		return -7
	}
	return 7
}

// request is one request of the hot mode, to a path under the server's base
// URL; token requests go without the API key, as a browser sends them.
type request struct {
	method, path string
	body         []byte
	token        bool
}

// alternateOps sends n hot and n comparison requests, one at a time, in
// pairs whose order alternates, and times each to the end of its answer.
// A failed one is counted and the next one sent; an interrupted run is an
// error.
func alternateOps(ctx context.Context, api apiClient, n int, hot, cmp func(i int) request) (run, run, error) {
	series := [2]struct {
		r   run
		lat []time.Duration
		req func(int) request
	}{{req: hot}, {req: cmp}}
	start := time.Now()
	for i := range n {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			s := &series[k]
			if s.r.failures == nil {
				s.r.target, s.r.kind = "feedbackd", "hot"
				s.r.failures, s.r.examples = map[string]int{}, map[string]string{}
			}
			req := s.req(i)
			status, answer, took, err := api.do(ctx, req)
			if ctx.Err() != nil {
				return series[0].r, series[1].r, ctx.Err()
			}
			s.r.sent++
			if err == nil && status == http.StatusOK {
				s.r.ok++
				s.lat = append(s.lat, took)
				continue
			}
			res := &vegeta.Result{Code: uint16(status), Body: answer}
			if err != nil {
				res.Code, res.Error = 0, err.Error()
			}
			s.r.fail(res)
		}
	}
	for k := range series {
		s := &series[k]
		slices.Sort(s.lat)
		s.r.elapsed = time.Since(start)
		s.r.p50, s.r.p90, s.r.p99 = percentile(s.lat, 0.5), percentile(s.lat, 0.9), percentile(s.lat, 0.99)
		s.r.p999, s.r.max = percentile(s.lat, 0.999), percentile(s.lat, 1)
	}
	return series[0].r, series[1].r, nil
}

// apiClient sends the hot mode's requests to feedbackd one at a time, on
// one keep-alive connection.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string) apiClient {
	return apiClient{base: base, http: &http.Client{Timeout: requestTimeout}}
}

// do sends req and returns the answer's status and body, and the time from
// sending to the end of the body.
func (a apiClient) do(ctx context.Context, req request) (status int, answer []byte, took time.Duration, err error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, a.base+req.path, body)
	if err != nil {
		return 0, nil, 0, err
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if !req.token {
		hr.Header.Set("x-portkey-api-key", apiKey)
	}
	start := time.Now()
	resp, err := a.http.Do(hr)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	answer, err = io.ReadAll(resp.Body)
	return resp.StatusCode, answer, time.Since(start), err
}

// call sends req, fails unless it is answered 200, and decodes the answer
// into into: the unmeasured requests that set the hot mode up.
func (a apiClient) call(ctx context.Context, req request, into any) error {
	status, answer, _, err := a.do(ctx, req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d %s", req.method, req.path, status, truncate(string(answer), 300))
	}
	if err := json.Unmarshal(answer, into); err != nil {
		return fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	return nil
}

// accepted is the answer to a write.
type accepted struct {
	IDs []string `json:"feedback_ids"`
}

// fillHot posts rows feedback to trace in bulks of up to bulkSize, one at a
// time, and returns their ids in the order posted, which is the order of
// their creation.
func fillHot(ctx context.Context, api apiClient, backend, trace string, rows int, gen *skewed) ([]string, error) {
	bulks := (rows + bulkSize - 1) / bulkSize
	fmt.Fprintf(os.Stderr, "%-8s filling trace %s with %d feedback in %d bulks...\n", backend, trace, rows, bulks)
	start := time.Now()
	ids := make([]string, 0, rows)
	for len(ids) < rows {
		n := min(bulkSize, rows-len(ids))
		var a accepted
		if err := api.call(ctx, request{method: http.MethodPost, path: "/v1/feedback", body: gen.bulk(trace, n)}, &a); err != nil {
			return ids, err
		}
		if len(a.IDs) != n {
			return ids, fmt.Errorf("a bulk of %d was answered with %d ids", n, len(a.IDs))
		}
		ids = append(ids, a.IDs...)
	}
	fmt.Fprintf(os.Stderr, "%-8s filled in %.1f s\n", backend, time.Since(start).Seconds())
	return ids, nil
}

// tokenFeedback creates a feedback token for trace and records its
// feedback, returning the token and that feedback's id.
func tokenFeedback(ctx context.Context, api apiClient, trace string, gen *skewed) (token, id string, err error) {
	var t struct {
		Token string `json:"token"`
	}
	req := request{method: http.MethodPost, path: "/v1/feedback/tokens", body: mustJSON(map[string]any{
		"trace_id": trace, "metadata": map[string]string{"_prompt": "prompt-0", "_environment": "production"},
	})}
	if err := api.call(ctx, req, &t); err != nil {
		return "", "", err
	}
	var a accepted
	req = request{method: http.MethodPost, path: "/v1/feedback/tokens/" + url.PathEscape(t.Token), token: true,
		body: mustJSON(map[string]any{"value": 1, "metadata": map[string]string{"_user": gen.user()}})}
	if err := api.call(ctx, req, &a); err != nil {
		return "", "", err
	}
	if len(a.IDs) != 1 {
		return "", "", fmt.Errorf("a token submission was answered with %d ids", len(a.IDs))
	}
	return url.PathEscape(t.Token), a.IDs[0], nil
}

// smallTraces posts n traces of two feedback each and returns the id of
// each trace's first.
func smallTraces(ctx context.Context, api apiClient, c *corpus, gen *skewed, n int) ([]string, error) {
	var firsts []string
	for len(firsts) < n {
		k := min(bulkSize/2, n-len(firsts))
		items := make([]json.RawMessage, 0, 2*k)
		for range k {
			trace := c.newTrace("pair")
			items = append(items, gen.item(trace), gen.item(trace))
		}
		var a accepted
		if err := api.call(ctx, request{method: http.MethodPost, path: "/v1/feedback", body: mustJSON(items)}, &a); err != nil {
			return nil, err
		}
		if len(a.IDs) != 2*k {
			return nil, fmt.Errorf("a bulk of %d was answered with %d ids", 2*k, len(a.IDs))
		}
		for i := 0; i < len(a.IDs); i += 2 {
			firsts = append(firsts, a.IDs[i])
		}
	}
	return firsts, nil
}

// checkFirst makes sure that want is trace's first feedback, as the store
// orders them (by creation time, then id): the oldest that the listing,
// newest first, ends with among those created no later than want.
func checkFirst(ctx context.Context, api apiClient, trace, want string) error {
	var f struct {
		CreatedAt time.Time `json:"created_at"`
	}
	if err := api.call(ctx, request{method: http.MethodGet, path: "/v1/feedback/" + want}, &f); err != nil {
		return err
	}
	q := url.Values{
		"trace_id":       {trace},
		"created_before": {f.CreatedAt.Add(time.Microsecond).Format(time.RFC3339Nano)},
		"limit":          {"1000"},
	}
	last := ""
	for range 10 {
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := api.call(ctx, request{method: http.MethodGet, path: "/v1/feedback?" + q.Encode()}, &page); err != nil {
			return err
		}
		if len(page.Data) > 0 {
			last = page.Data[len(page.Data)-1].ID
		}
		if page.NextCursor == nil {
			if last != want {
				return fmt.Errorf("the hot trace's first feedback is %q, not %q, the first posted: the hot mode would not time what it says", last, want)
			}
			return nil
		}
		q.Set("cursor", *page.NextCursor)
	}
	return errors.New("over 10 pages of the hot trace's feedback were created no later than its first")
}

// skewed makes feedback with metadata as skewed as a hot trace's can be: a
// _user of hotUsers drawn by a Zipf law (a few users give most of the
// feedback), a _prompt of 3, an _organisation of 3, one _environment.
type skewed struct {
	r     *rand.Rand
	users *rand.Zipf
}

func newSkewed(seed uint64) *skewed {
	r := rand.New(rand.NewPCG(seed, 3))
	return &skewed{r: r, users: rand.NewZipf(r, 1.2, 1, hotUsers-1)}
}

func (s *skewed) user() string { return fmt.Sprintf("user-%d", s.users.Uint64()) }

// otherUser draws a _user other than than.
func (s *skewed) otherUser(than string) string {
	for range 10 {
		if u := s.user(); u != than {
			return u
		}
	}
	return than + "-other"
}

func (s *skewed) metadata(user string) map[string]string {
	return map[string]string{
		"_user":         user,
		"_prompt":       fmt.Sprintf("prompt-%d", s.r.IntN(3)),
		"_organisation": fmt.Sprintf("org-%d", s.r.IntN(3)),
		"_environment":  "production",
	}
}

// item is one feedback for trace: a thumb (±1) half of the time, any
// value otherwise.
func (s *skewed) item(trace string) []byte {
	value := s.r.IntN(21) - 10
	if s.r.IntN(2) == 0 {
		value = 2*s.r.IntN(2) - 1
	}
	return mustJSON(map[string]any{"trace_id": trace, "value": value, "metadata": s.metadata(s.user())})
}

// bulk is an array of n feedback for trace.
func (s *skewed) bulk(trace string, n int) []byte {
	buf := append(make([]byte, 0, n*160), '[')
	for i := range n {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, s.item(trace)...)
	}
	return append(buf, ']')
}

// mustJSON marshals what always marshals: maps and slices of strings,
// numbers and raw JSON.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// newTrace is a trace id no feedback has yet.
func (c *corpus) newTrace(kind string) string {
	return fmt.Sprintf("%s-%s-%016x", kind, c.prefix, c.next.Add(1))
}

// printHot reports the hot mode: each kind of operation on the hot trace
// beside the same on a new or small trace.
func printHot(w io.Writer, results []backendResult) {
	if !hasKind(results, "hot") {
		return
	}
	fmt.Fprintln(w, "## Hot trace: one operation at a time")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "One client, one request at a time, hot and comparison operations alternating; the hot trace filled first "+
		"in bulks of %d, its _user of %d drawn by a Zipf law, _prompt and _organisation of 3, one _environment. "+
		"Each PUT and token re-vote changes the value and _user of the hot trace's first (oldest) feedback; each DELETE removes it. "+
		"Rows: the hot trace's at the start of the operations.\n\n", bulkSize, hotUsers)
	fmt.Fprintln(w, "| backend | operation | rows | hot p50 | hot p90 | compared with | its p50 | its p90 | hot / it, p50 | p90 | failed |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
	for _, res := range results {
		for i, hot := range res.runs {
			if hot.kind != "hot" || hot.shape != "hot trace" || i+1 >= len(res.runs) {
				continue
			}
			cmp := res.runs[i+1]
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %d |\n",
				res.name, hot.op, hot.rows, ms(hot.p50), ms(hot.p90), cmp.shape, ms(cmp.p50), ms(cmp.p90),
				ratio(hot.p50, cmp.p50), ratio(hot.p90, cmp.p90), hot.sent-hot.ok+cmp.sent-cmp.ok)
		}
	}
	fmt.Fprintln(w)
}

// ratio is a/b, or "-" when b is 0.
func ratio(a, b time.Duration) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}
