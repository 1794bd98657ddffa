# Tessera: `make demo` runs the main job on the embedded sample, `make test` runs the test suite.
# Both install what they need first (Debian packages, the default model).
SHELL := /bin/bash
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libopenblas-dev libhnswlib-dev python3-pip python3-venv etcd-server
RELEASE_BIN := .build/release/tessera

.PHONY: demo test deps model build release lint format bench-kernel bench-kernel-peers bench-encoder bench-encoder-peers eval-beir bench-search bench-plaid-peer bench-engine bench-cluster docs clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

model: deps
	./scripts/fetch-model

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product tessera

demo: model release
	$(RELEASE_BIN) demo

# The command-line tests run the optimised binary (encoding in a debug build is many times slower).
test: model release
	$(SWIFT) build --build-tests
	TESSERA_CLI=$(CURDIR)/$(RELEASE_BIN) $(SWIFT) test --skip-build
	./Tests/compat/run-qdrant-client.sh $(CURDIR)/$(RELEASE_BIN)
	./Tests/cluster/run-cluster-test.sh $(CURDIR)/$(RELEASE_BIN)

lint:
	$(SWIFT) format lint --strict --parallel --recursive Sources Tests

format:
	$(SWIFT) format --in-place --parallel --recursive Sources Tests

bench-kernel: release
	$(RELEASE_BIN) bench kernel

bench-kernel-peers: release
	./Benchmarks/peers/run-kernel-peers.sh

bench-encoder: model release
	$(RELEASE_BIN) bench encoder

bench-encoder-peers: model release
	./Benchmarks/peers/run-encoder-peers.sh --limit 1000

# nDCG@10 and friends of exact search on BEIR data (../shared/ir-data by default; DATA=... to change it).
eval-beir: model release
	./Benchmarks/eval-beir.sh $(or $(DATA),../shared/ir-data) $(CONFIGS)

# Scatter-gather on loopback: SciFact over three cluster nodes against one node (DATA=..., DATASET=..., DOCS=N).
bench-cluster: model release deps
	./Benchmarks/bench-cluster.sh $(or $(DATA),../shared/ir-data) $(or $(DATASET),scifact)

# Exact search against the compressed index (alone and reranked) on SciFact and Cranfield, with build times.
bench-search: model release
	./Benchmarks/bench-search.sh $(or $(DATA),../shared/ir-data) $(DATASETS)

# fast-plaid (PyPI) on the token vectors of the SciFact collection that bench-search built, exported by
# tessera bench export, with our index's settings (2 bits, 4,096 centroids).
bench-plaid-peer: release
	$(RELEASE_BIN) bench export .build/eval-collections/scifact-f16-plain \
		--beir $(or $(DATA),../shared/ir-data)/scifact --out .build/plaid-export
	./Benchmarks/peers/run-plaid-peer.sh --export .build/plaid-export \
		--qrels $(or $(DATA),../shared/ir-data)/scifact/qrels/test.tsv --nbits 2 --threads 2 --centroids 4096

# The storage engine through `tessera serve`: SciFact open → first query, upserts and queries alone and together;
# a keyword filter over 10⁶ points; a synthetic collection of SYNTH_TOKENS tokens (import, optimise, disk,
# compressed and hybrid queries, memory). Sizes and skips are environment variables (see the script).
bench-engine: model release
	./Benchmarks/bench-engine.sh

clean:
	rm -rf .build
