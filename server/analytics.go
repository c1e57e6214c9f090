package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/feedbackd/feedbackd/gen"
	"github.com/feedbackd/feedbackd/server/store"
	"github.com/feedbackd/feedbackd/server/store/rollup"
)

// Bucket sizes, in seconds.
const (
	hour = 3600
	day  = 24 * hour
	week = 7 * day
	// maxBuckets bounds a graph's length.
	maxBuckets = 10000
)

// analyticsFilters are the parameters every analytics endpoint shares.
type analyticsFilters struct {
	from, to               time.Time
	granularity            *string
	metadata, traceIDs     *string
	weightedMin, weightMax *float64
	// orgModels is Portkey's ai_org_model: provider__model names.
	orgModels *string
}

// timeline is a range cut into buckets that start at whole hours, days or
// weeks (Mondays) in the time zone the range's start was given in.
type timeline struct {
	loc         *time.Location
	size, shift int64
	first, last int64
}

func (tl timeline) start(k int64) time.Time { return time.Unix(k*tl.size-tl.shift, 0).In(tl.loc) }

func (tl timeline) bucketOf(t time.Time) int64 {
	return store.FloorDiv(t.UnixMicro()+tl.shift*1_000_000, tl.size*1_000_000)
}

func rangeError(message string) error {
	return &requestError{status: http.StatusBadRequest, message: "invalid time range", fields: []gen.FieldError{{Path: "time_of_generation_min", Message: message}}}
}

// query turns the parameters into a store query and the timeline its
// buckets form.
func (f analyticsFilters) query() (store.AnalyticsQuery, timeline, error) {
	q := store.AnalyticsQuery{From: f.from, To: f.to, WeightedMin: f.weightedMin, WeightedMax: f.weightMax}
	if f.to.Before(f.from) {
		return q, timeline{}, rangeError("must not be after time_of_generation_max")
	}
	name, offset := f.from.Zone()
	if offset%store.Quarter != 0 {
		return q, timeline{}, rangeError("its UTC offset must be whole quarter hours")
	}
	tl := timeline{loc: time.FixedZone(name, offset), shift: int64(offset)}
	window := f.to.Sub(f.from)
	switch {
	case f.granularity != nil:
		tl.size = map[string]int64{"hour": hour, "day": day, "week": week}[*f.granularity]
	case window <= 2*24*time.Hour:
		tl.size = hour
	case window <= 90*24*time.Hour:
		tl.size = day
	default:
		tl.size = week
	}
	if tl.size == week {
		tl.shift += 3 * day // the Unix epoch was a Thursday; weeks start on Monday
	}
	tl.first, tl.last = tl.bucketOf(f.from), tl.bucketOf(f.to)
	if n := tl.last - tl.first + 1; n > maxBuckets {
		return q, timeline{}, rangeError(fmt.Sprintf("the range would make %d buckets, more than %d: choose a coarser granularity", n, maxBuckets))
	}
	q.BucketSize, q.BucketShift = tl.size, tl.shift
	if f.metadata != nil {
		m, err := parseMetadataFilter(*f.metadata)
		if err != nil {
			return q, timeline{}, err
		}
		q.Metadata = m
	}
	if f.traceIDs != nil {
		ids, err := splitTraceIDs(*f.traceIDs)
		if err != nil {
			return q, timeline{}, err
		}
		q.TraceIDs = ids
	}
	if f.orgModels != nil {
		for m := range strings.SplitSeq(*f.orgModels, ",") {
			m = strings.TrimSpace(m)
			if p, model, split := rollup.SplitOrgModel(m); split && (p == "" || model == "") {
				return q, timeline{}, paramError("ai_org_model", fmt.Sprintf("%q must name a provider and a model, as openai__gpt-4o", m))
			}
			if m != "" && !slices.Contains(q.OrgModels, m) {
				q.OrgModels = append(q.OrgModels, m)
			}
		}
		if len(q.OrgModels) == 0 {
			return q, timeline{}, paramError("ai_org_model", "lists no model")
		}
	}
	return q, tl, nil
}

// cells runs the query for the request's workspace.
func (s *Server) cells(ctx context.Context, f analyticsFilters) ([]store.Cell, timeline, error) {
	q, tl, err := f.query()
	if err != nil {
		return nil, tl, err
	}
	cells, err := s.store.FeedbackCells(ctx, workspaceOf(ctx), q)
	return cells, tl, err
}

// GetFeedbackGraph counts feedback per time bucket.
func (s *Server) GetFeedbackGraph(ctx context.Context, req gen.GetFeedbackGraphRequestObject) (gen.GetFeedbackGraphResponseObject, error) {
	p := req.Params
	cells, tl, err := s.cells(ctx, analyticsFilters{
		from: p.TimeOfGenerationMin, to: p.TimeOfGenerationMax, granularity: (*string)(p.Granularity),
		metadata: p.Metadata, traceIDs: p.TraceID, weightedMin: p.WeightedFeedbackMin, weightMax: p.WeightedFeedbackMax, orgModels: p.AiOrgModel,
	})
	if err != nil {
		return nil, err
	}
	counts := map[int64]int{}
	total := 0
	for _, c := range cells {
		counts[c.Bucket] += int(c.Count)
		total += int(c.Count)
	}
	out := gen.GetFeedbackGraph200JSONResponse{Object: gen.AnalyticsGraph, Summary: gen.TotalSummary{Total: total}}
	out.DataPoints = make([]gen.TotalPoint, 0, tl.last-tl.first+1)
	for k := tl.first; k <= tl.last; k++ {
		out.DataPoints = append(out.DataPoints, gen.TotalPoint{Timestamp: tl.start(k), Total: counts[k]})
	}
	return out, nil
}

// GetFeedbackScoreGraph counts feedback per value (the API's score).
func (s *Server) GetFeedbackScoreGraph(ctx context.Context, req gen.GetFeedbackScoreGraphRequestObject) (gen.GetFeedbackScoreGraphResponseObject, error) {
	p := req.Params
	week := "week" // the coarsest buckets: the counts ignore time
	cells, _, err := s.cells(ctx, analyticsFilters{
		from: p.TimeOfGenerationMin, to: p.TimeOfGenerationMax, granularity: &week,
		metadata: p.Metadata, traceIDs: p.TraceID, weightedMin: p.WeightedFeedbackMin, weightMax: p.WeightedFeedbackMax, orgModels: p.AiOrgModel,
	})
	if err != nil {
		return nil, err
	}
	counts := map[int]int{}
	total := 0
	for _, c := range cells {
		counts[c.Value] += int(c.Count)
		total += int(c.Count)
	}
	out := gen.GetFeedbackScoreGraph200JSONResponse{Object: gen.AnalyticsGraph, Summary: gen.TotalSummary{Total: total}, DataPoints: []gen.ScorePoint{}}
	for _, value := range slices.Sorted(func(yield func(int) bool) {
		for v := range counts {
			if !yield(v) {
				return
			}
		}
	}) {
		out.DataPoints = append(out.DataPoints, gen.ScorePoint{Score: value, Total: counts[value]})
	}
	return out, nil
}

// GetFeedbackScoreGraphSingular is GetFeedbackScoreGraph at the path
// Portkey's Node SDK requests.
func (s *Server) GetFeedbackScoreGraphSingular(ctx context.Context, req gen.GetFeedbackScoreGraphSingularRequestObject) (gen.GetFeedbackScoreGraphSingularResponseObject, error) {
	out, err := s.GetFeedbackScoreGraph(ctx, gen.GetFeedbackScoreGraphRequestObject{Params: gen.GetFeedbackScoreGraphParams(req.Params)})
	if err != nil {
		return nil, err
	}
	return gen.GetFeedbackScoreGraphSingular200JSONResponse(out.(gen.GetFeedbackScoreGraph200JSONResponse)), nil
}

// GetWeightedFeedbackGraph averages value x weight per time bucket.
func (s *Server) GetWeightedFeedbackGraph(ctx context.Context, req gen.GetWeightedFeedbackGraphRequestObject) (gen.GetWeightedFeedbackGraphResponseObject, error) {
	p := req.Params
	cells, tl, err := s.cells(ctx, analyticsFilters{
		from: p.TimeOfGenerationMin, to: p.TimeOfGenerationMax, granularity: (*string)(p.Granularity),
		metadata: p.Metadata, traceIDs: p.TraceID, weightedMin: p.WeightedFeedbackMin, weightMax: p.WeightedFeedbackMax, orgModels: p.AiOrgModel,
	})
	if err != nil {
		return nil, err
	}
	type acc struct {
		n   int64
		sum float64
	}
	buckets := map[int64]*acc{}
	var all acc
	for _, c := range cells {
		b := buckets[c.Bucket]
		if b == nil {
			b = &acc{}
			buckets[c.Bucket] = b
		}
		b.n += c.Count
		b.sum += c.SumWeighted
		all.n += c.Count
		all.sum += c.SumWeighted
	}
	avg := func(a *acc) float64 {
		if a == nil || a.n == 0 {
			return 0
		}
		return decimal(a.sum / float64(a.n))
	}
	out := gen.GetWeightedFeedbackGraph200JSONResponse{Object: gen.AnalyticsGraph, Summary: gen.AverageSummary{Avg: avg(&all)}}
	out.DataPoints = make([]gen.AveragePoint, 0, tl.last-tl.first+1)
	for k := tl.first; k <= tl.last; k++ {
		out.DataPoints = append(out.DataPoints, gen.AveragePoint{Timestamp: tl.start(k), Avg: avg(buckets[k])})
	}
	return out, nil
}

// GetMetadataGroups groups feedback by the value of one metadata key.
func (s *Server) GetMetadataGroups(ctx context.Context, req gen.GetMetadataGroupsRequestObject) (gen.GetMetadataGroupsResponseObject, error) {
	p := req.Params
	week := "week" // groups ignore buckets; the coarsest keeps the count low
	q, _, err := analyticsFilters{
		from: p.TimeOfGenerationMin, to: p.TimeOfGenerationMax, granularity: &week,
		metadata: p.Metadata, traceIDs: p.TraceID, weightedMin: p.WeightedFeedbackMin, weightMax: p.WeightedFeedbackMax, orgModels: p.AiOrgModel,
	}.query()
	if err != nil {
		return nil, err
	}
	page, size := 0, 50
	if p.CurrentPage != nil {
		page = *p.CurrentPage
	}
	if p.PageSize != nil {
		size = *p.PageSize
	}
	groups, total, err := s.store.MetadataGroups(ctx, workspaceOf(ctx), req.MetadataKey, q, page*size, size)
	if err != nil {
		return nil, err
	}
	out := gen.GetMetadataGroups200JSONResponse{Object: gen.MetadataGroupsObjectList, Total: total, Data: make([]gen.MetadataGroup, len(groups))}
	for i, g := range groups {
		out.Data[i] = gen.MetadataGroup{
			Object: gen.AnalyticsGroup, MetadataValue: g.MetaValue, Requests: int(g.Requests), RequestsWithFeedback: int(g.Requests),
			AvgWeightedFeedback: decimal(g.AvgWeighted), LastSeen: g.LastSeen,
		}
	}
	return out, nil
}

// GetFeedbackAIModelGraph tallies feedback by the AI model its metadata
// names (rollup.ModelOf).
func (s *Server) GetFeedbackAIModelGraph(ctx context.Context, req gen.GetFeedbackAIModelGraphRequestObject) (gen.GetFeedbackAIModelGraphResponseObject, error) {
	p := req.Params
	week := "week" // the coarsest buckets: the tallies ignore time
	q, _, err := analyticsFilters{
		from: p.TimeOfGenerationMin, to: p.TimeOfGenerationMax, granularity: &week,
		metadata: p.Metadata, traceIDs: p.TraceID, weightedMin: p.WeightedFeedbackMin, weightMax: p.WeightedFeedbackMax, orgModels: p.AiOrgModel,
	}.query()
	if err != nil {
		return nil, err
	}
	models, err := s.store.FeedbackModels(ctx, workspaceOf(ctx), q)
	if err != nil {
		return nil, err
	}
	out := gen.GetFeedbackAIModelGraph200JSONResponse{Object: gen.AnalyticsGraph, DataPoints: make([]gen.AIModelPoint, len(models))}
	for i, m := range models {
		out.DataPoints[i] = gen.AIModelPoint{AiModel: m.Model, Total: int(m.Count), AvgWeightedFeedback: decimal(m.SumWeighted / float64(m.Count))}
		out.Summary.Total += int(m.Count)
	}
	return out, nil
}

// decimal is an average as the API answers it: rounded to nine decimal
// places, so that three weighted values of 2 x 0.7 average 1.4, not the
// 1.3999999999999997 their binary sum gives; a weighted value is value x
// weight, so nine places are far finer than any difference between
// averages.
func decimal(avg float64) float64 { return math.Round(avg*1e9) / 1e9 }
