# feedbackd: the commands a developer and CI run.
#   make run    build and serve on the embedded SQLite store (feedbackd.db)
#   make test   every check and test CI runs
#   make lint-spec  lint openapi.yaml (Redocly CLI; part of make test)
#   make image  the container image, with podman or docker (docs/operations.md#containers)
GO ?= go
BIN := bin/feedbackd
ADDR ?= 127.0.0.1:8787
DB ?= feedbackd.db

.PHONY: run build image test generate check-generated lint-spec vet fmt-check go-test compat-node compat-openapi-ts browser-test dashboard-vendor bench-analytics bench bench-import bench-floor bench-long-reads bench-hot-trace bench-adversarial bench-webhook bench-erase check-breaking fuzz

run: build
	./$(BIN) serve --addr $(ADDR) --db $(DB)

# -buildvcs=auto stamps the commit (feedbackd version prints it) even where
# GOFLAGS turns stamping off.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/feedbackd

# The container image (Containerfile), tagged IMAGE. The binary is built
# here, static and stamped like build's, so the image needs no base image
# to pull; the CA bundle is this machine's. -trimpath keeps this machine's
# paths out of it; -s -w drop the symbol table and DWARF (40 MB -> 28 MB;
# panics still print their stacks). With podman, or docker where the
# machine has no podman (CONTAINER_ENGINE chooses).
IMAGE ?= feedbackd
CONTAINER_ENGINE ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
image:
	@ctx=$$(mktemp -d) && trap 'rm -rf "$$ctx"' EXIT && \
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -trimpath -ldflags='-s -w' -o "$$ctx/feedbackd" ./cmd/feedbackd && \
	cp $(CA_BUNDLE) "$$ctx/ca-certificates.crt" && mkdir "$$ctx/data" && \
	$(CONTAINER_ENGINE) build -f Containerfile -t $(IMAGE) "$$ctx" && \
	size=$$($(CONTAINER_ENGINE) image inspect --format '{{.Size}}' $(IMAGE)) && \
	echo "image $(IMAGE) built with $(CONTAINER_ENGINE): $$(( size / 1000000 )) MB"

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

# Fail when openapi.yaml breaks a client of the last release (its spec is
# compat/released/, found through CHANGELOG.md), unless
# compat/breaking-changes.txt lists the change with a reason. oasdiff is
# pinned as a go tool in go.mod.
check-breaking:
	scripts/check-breaking.sh

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
# cmd/feedbackd's end-to-end tests take about 7 minutes under -race here,
# past 9 on a busy machine: above go test's default 10-minute limit per
# package, so the limit is raised.
go-test:
	scripts/with-postgres.sh $(GO) test -race -count=1 -timeout 20m ./...
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

# A TypeScript client generated by @hey-api/openapi-ts (default settings,
# pinned by compat/openapi-ts/package-lock.json) from the spec the real
# server binary serves: strict tsc, then every operation of the spec.
# Without Node.js it says it skipped, except where FEEDBACKD_REQUIRE_NODE=1
# (CI sets it), where a missing Node.js fails.
compat-openapi-ts: build
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		if [ "$$FEEDBACKD_REQUIRE_NODE" = 1 ]; then echo "compat-openapi-ts: Node.js and npm are required"; exit 1; fi; \
		echo "compat-openapi-ts: Node.js or npm not found: the generated TypeScript client suite is SKIPPED"; exit 0; \
	fi; \
	cd compat/openapi-ts && npm ci --no-audit --no-fund && \
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

test: fmt-check vet check-generated check-breaking lint-spec go-test compat-node compat-openapi-ts browser-test

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

# Single posts at 1000/s alone and beside long reads, again and again:
# feedbackd export of the whole store, then groups by _user over all of
# it (the store filled to FILL_ROWS first), with the SQLite WAL's largest
# live size.
FILL_ROWS ?= 1000000
bench-long-reads: build
	$(GO) build -o bin/ceiling ./bench/ceiling
	scripts/with-postgres.sh $(GO) run ./bench/ingest -feedbackd bin/feedbackd -modes export,analytics -rates 1000 -fill-rows $(FILL_ROWS)

# Hot traces: every kind of write (single and bulk POST, PUT, token re-vote,
# DELETE of a trace's first feedback), one at a time, on one trace of
# HOT_ROWS feedback against the same on a new or small trace; then the open
# loop at 1,000 and 2,000 single posts a second with a tenth of them to a
# trace of HOT_ROWS, beside the bare ceiling and the durable floor. On
# SQLite, and PostgreSQL when scripts/with-postgres.sh finds one; each run
# fills its trace through the API in bulks of 1000. The open loop without
# the hot share: the same second command without -hot-share.
HOT_ROWS ?= 100000
bench-hot-trace: build
	$(GO) build -o bin/ceiling ./bench/ceiling
	scripts/with-postgres.sh $(GO) run ./bench/ingest -feedbackd bin/feedbackd -ceiling bin/ceiling -modes hot -hot-rows $(HOT_ROWS)
	scripts/with-postgres.sh $(GO) run ./bench/ingest -feedbackd bin/feedbackd -ceiling bin/ceiling -modes open -rates 1000,2000 -hot-share 0.1 -hot-rows $(HOT_ROWS) -floor

# Adversarial shapes: the open loop at 1,000 single posts a second, beside
# the bare ceiling and the durable floor, once for each shape of its
# requests: _user drawn by a Zipf law (a few users give most feedback);
# half with one hot _prompt, _organisation and model (the same derived
# rows on every such write); half replacing one feedback id (a thumbs
# toggle); a tenth to a trace of HOT_ROWS feedback. On SQLite, and
# PostgreSQL when scripts/with-postgres.sh finds one; each report names
# its shape's flags.
ADVERSARIAL := scripts/with-postgres.sh $(GO) run ./bench/ingest -feedbackd bin/feedbackd -ceiling bin/ceiling -modes open -rates 1000 -rounds 1 -floor
bench-adversarial: build
	$(GO) build -o bin/ceiling ./bench/ceiling
	$(ADVERSARIAL) -zipf-users 1.1
	$(ADVERSARIAL) -hot-value-share 0.5
	$(ADVERSARIAL) -hot-id-share 0.5
	$(ADVERSARIAL) -hot-share 0.1 -hot-rows $(HOT_ROWS)

# The open loop at 1,000/s on feedbackd with a webhook whose receiver
# answers each delivery after 2 s, beside feedbackd without one (and the
# bare ceiling), in the same rounds: a slow receiver must not slow writes.
bench-webhook: build
	$(GO) build -o bin/ceiling ./bench/ceiling
	scripts/with-postgres.sh $(GO) run ./bench/ingest -feedbackd bin/feedbackd -ceiling bin/ceiling -modes open -rates 1000 -rounds 3 -webhook -webhook-delay 2s

# Erase by filter: one user's 10,000 and 100,000 feedback, spread over
# 1,000 traces and all on one trace, beside as many other feedback; the
# time per erased row stays the same when an erase is linear in what it
# erases. SQLite, and PostgreSQL when scripts/with-postgres.sh finds one.
bench-erase:
	scripts/with-postgres.sh $(GO) test ./server/store/sqlite ./server/store/postgres -run '^$$' -bench Erase -benchtime 1x

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
