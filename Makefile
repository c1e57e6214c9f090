# feedbackd: the commands a developer and CI run.
#   make run    build and serve on the embedded SQLite store (feedbackd.db)
#   make test   every check and test CI runs
#   make lint-spec  lint openapi.yaml (Redocly CLI; part of make test)
GO ?= go
BIN := bin/feedbackd
ADDR ?= 127.0.0.1:8787
DB ?= feedbackd.db

.PHONY: run build test generate check-generated lint-spec vet fmt-check go-test compat-node browser-test dashboard-vendor bench-analytics bench bench-import bench-floor fuzz

run: build
	./$(BIN) serve --addr $(ADDR) --db $(DB)

build:
	$(GO) build -o $(BIN) ./cmd/feedbackd

# Regenerate gen/ and client/client.gen.go from openapi.yaml.
generate:
	$(GO) generate ./...

# Regenerate in a scratch copy of the tree and compare: the committed
# generated code must be exactly what the spec and the pinned generator give.
check-generated:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$$tmp" && \
	(cd "$$tmp" && $(GO) generate ./...) && \
	diff -ru gen "$$tmp/gen" && diff -u client/client.gen.go "$$tmp/client/client.gen.go" && \
	echo "generated code matches openapi.yaml"

# Lint openapi.yaml with Redocly CLI (tools/lint-spec: pinned by its
# package-lock.json; the rules, and why any is off, in redocly.yaml).
# Without Node.js it says it skipped, except where FEEDBACKD_REQUIRE_NODE=1
# (CI sets it), where a missing Node.js fails.
lint-spec:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$FEEDBACKD_REQUIRE_NODE" = 1 ]; then echo "lint-spec: Node.js and npm are required"; exit 1; fi; \
		echo "lint-spec: Node.js or npm not found: openapi.yaml is NOT linted"; exit 0; \
	fi; \
	cd tools/lint-spec && npm ci --no-audit --no-fund --silent && \
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npm run --silent lint

# client/ is a module of its own (an old go line, so older Go can import
# it): ./... from the root does not reach it, so vet and go-test name it.
# mod tidy -diff fails when client/go.mod or go.sum is not tidy.
CLIENT := client

vet:
	$(GO) vet ./...
	cd $(CLIENT) && $(GO) vet ./... && $(GO) mod tidy -diff

fmt-check:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The PostgreSQL suites run against a throwaway cluster that
# scripts/with-postgres.sh starts when PostgreSQL is installed (or against
# FEEDBACKD_TEST_POSTGRES_URL); without PostgreSQL they say they are skipped.
go-test:
	scripts/with-postgres.sh $(GO) test -race -count=1 ./...
	cd $(CLIENT) && $(GO) test -race -count=1 ./...

# Portkey's official Node SDK (npm portkey-ai, pinned by package-lock.json)
# against the real server binary.
# Without Node.js it says it skipped, except where FEEDBACKD_REQUIRE_NODE=1
# (CI sets it), where a missing Node.js fails.
compat-node: build
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$FEEDBACKD_REQUIRE_NODE" = 1 ]; then echo "compat-node: Node.js and npm are required"; exit 1; fi; \
		echo "compat-node: Node.js or npm not found: the Portkey Node SDK suite is SKIPPED"; exit 0; \
	fi; \
	cd compat/portkey-node && npm ci --no-audit --no-fund && \
	FEEDBACKD_BIN=$(CURDIR)/$(BIN) node --test

# The dashboard in headless Chromium (Debian's chromium package, driven by
# playwright-core pinned in compat/dashboard-browser/package-lock.json)
# against the real server binary; it leaves a screenshot in bin/.
# Without Chromium or Node.js it says it skipped, except where
# FEEDBACKD_REQUIRE_BROWSER=1 (CI sets it), where a missing one fails.
CHROMIUM ?= /usr/bin/chromium
browser-test: build
	@if [ ! -x "$(CHROMIUM)" ] || ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$FEEDBACKD_REQUIRE_BROWSER" = 1 ]; then echo "browser-test: Chromium ($(CHROMIUM)), Node.js and npm are required"; exit 1; fi; \
		echo "browser-test: Chromium ($(CHROMIUM)), Node.js or npm not found: the dashboard browser test is SKIPPED"; exit 0; \
	fi; \
	cd compat/dashboard-browser && npm ci --no-audit --no-fund && \
	CHROMIUM_BIN=$(CHROMIUM) FEEDBACKD_BIN=$(CURDIR)/$(BIN) node --test

# Copy the charting library the dashboard embeds (uPlot) from the version
# compat/dashboard-browser/package-lock.json pins; commit what it changes.
dashboard-vendor:
	scripts/vendor-dashboard.sh

test: fmt-check vet check-generated lint-spec go-test compat-node browser-test

# The analytics benchmark: loads BENCH_ROWS feedback into each store (SQLite,
# and PostgreSQL when scripts/with-postgres.sh finds one) and times every
# analytics endpoint over 30 days. With 10 million rows it takes a while.
BENCH_ROWS ?= 10000000
bench-analytics:
	scripts/with-postgres.sh $(GO) run ./bench/analytics -rows $(BENCH_ROWS)

# The ingestion benchmark: feedbackd against the bare Echo ceiling, same load:
# a closed loop (32 connections, no rate limit), an open loop at fixed rates
# (1,000 and 2,000 single POSTs a second: the latency below saturation), then
# bulk (bench/ingest's -modes, -rates and -rate-duration choose; e.g. only
# the open loop: go run ./bench/ingest -modes open, after this target's builds;
# -durable-ceiling makes the ceiling append each body to a bare SQLite table
# first: the durability floor).
bench: build
	$(GO) build -o bin/ceiling ./bench/ceiling
	scripts/with-postgres.sh $(GO) run ./bench/ingest -feedbackd bin/feedbackd -ceiling bin/ceiling

# The storage floor: SQLite's own insert rate (a bare table, then
# feedbackd's row indexes) beside the SQLite store's bulk path, and the
# per-row cost of groups by _user, in one run.
bench-floor:
	$(GO) run ./bench/floor
	$(GO) run ./bench/floor -users 100000 -rounds 1

# The import benchmark: generates IMPORT_ROWS feedback in the export format
# (bench/importgen) and imports them into a new SQLite file; import prints
# its time and rate.
IMPORT_ROWS ?= 1000000
bench-import: build
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) run ./bench/importgen -rows $(IMPORT_ROWS) -o "$$tmp/feedback.ndjson" && \
	./$(BIN) import --db "$$tmp/feedbackd.db" --progress lines "$$tmp/feedback.ndjson"

# Fuzzing: each target explores beyond its committed seed corpus
# (server/testdata/fuzz, which every make test runs) for FUZZTIME.
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./server -run '^$$' -fuzz '^FuzzCreateFeedback$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzParseMetadataFilter$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzDecodeCursor$$' -fuzztime $(FUZZTIME)
	$(GO) test ./server -run '^$$' -fuzz '^FuzzFastPath$$' -fuzztime $(FUZZTIME)
