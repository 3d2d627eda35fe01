# snapagent — see README.md. Every target installs what it needs first (make deps).
SHELL := /bin/bash
NODE_DIR := $(CURDIR)/.tools
NODE := $(NODE_DIR)/node_modules/node/bin/node
export PATH := $(NODE_DIR)/node_modules/.bin:$(CURDIR)/node_modules/.bin:$(PATH)
SNAPAGENT := $(NODE) $(CURDIR)/bin/snapagent.js

CONFIG ?=
JOB ?=
ID ?=
TIER ?=
TARGET ?=
CRON_FILE ?= /etc/cron.d/snapagent
CRON_LOG ?= /var/log/snapagent.log
BEFORE ?=
cfg := $(if $(CONFIG),--config $(CONFIG))
comma := ,

.PHONY: deps system-deps node-deps docker images backup restore verify plan list prune install-cron uninstall-cron agent-image test test-unit test-e2e typecheck bench bench-deps demo demo-down clean

## deps: Node 24 (from the npm registry), npm packages, and the system tools (docker.io, zstd, rclone)
deps: system-deps node-deps docker

system-deps:
	@bash scripts/system-deps.sh

node-deps: $(NODE) node_modules/.installed

$(NODE):
	@if node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null && [ -z "$$SNAPAGENT_LOCAL_NODE" ]; then \
	  mkdir -p $(dir $(NODE)) && ln -sf "$$(command -v node)" $(NODE); \
	else \
	  echo "[deps] installing Node 24 into .tools/ (system node: $$(node --version 2>/dev/null || echo none))"; \
	  npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error node@24 >/dev/null; \
	fi
	@$(NODE) --version

node_modules/.installed: package.json package-lock.json | $(NODE)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## docker: make sure a Docker Engine answers (starts dockerd when we are root and none runs)
docker:
	@bash scripts/ensure-docker.sh

## images: the helper image and the test images (cached: a second run takes seconds)
images: docker
	@bash compose/images/build.sh all

helper-image: docker
	@bash compose/images/build.sh helper

## backup: back up every planned job (CONFIG=, JOB=, TIER=, TARGET=)
backup: deps helper-image
	$(SNAPAGENT) backup $(cfg) $(if $(JOB),--job $(JOB)) $(if $(TIER),--tier $(TIER)) $(if $(TARGET),--target $(TARGET))

## restore: the latest backup of every job (volumes, the compose stack, datastores), or JOB= [ID=]; BEFORE= a point in time; on a terminal without JOB, pick interactively
restore_flags = $(if $(TARGET),--target $(TARGET)) $(if $(BEFORE),--before '$(BEFORE)') $(if $(STOP),--stop) $(if $(FORCE),--force)
restore: deps helper-image
	@if [ -n "$(JOB)" ]; then \
	  $(SNAPAGENT) restore $(cfg) --job $(JOB) $(if $(ID),--id $(ID)) $(restore_flags); \
	elif [ -t 0 ] && [ -t 2 ]; then \
	  $(SNAPAGENT) restore $(cfg) --pick $(restore_flags); \
	else \
	  $(SNAPAGENT) restore $(cfg) --all $(restore_flags); \
	fi

## verify: check the latest backups against their manifests (JOB=, ID=latest|all|<id>, TARGET=); DRILL=1: restore drills
verify: deps
	$(SNAPAGENT) verify $(cfg) $(if $(JOB),--job $(JOB)) $(if $(ID),--id $(ID)) $(if $(TARGET),--target $(TARGET)) $(if $(DRILL),--drill)

plan: deps
	$(SNAPAGENT) plan $(cfg)

list: deps
	$(SNAPAGENT) list $(cfg) $(if $(JOB),--job $(JOB))

## prune: apply retention now (JOB=, DRY_RUN=1 to only show what would go)
prune: deps
	$(SNAPAGENT) prune $(cfg) $(if $(JOB),--job $(JOB)) $(if $(DRY_RUN),--dry-run)

## install-cron: a cron.d file with one `backup --tier T` line per tier of CONFIG (CRON_FILE=, CRON_LOG=)
install-cron: deps helper-image
	@$(NODE) scripts/cron.ts install $(cfg) --file $(CRON_FILE) --log $(CRON_LOG) --node $(NODE)

uninstall-cron:
	@$(NODE) scripts/cron.ts uninstall --file $(CRON_FILE)

## agent-image: the agent as a container image (compose/agent), for `docker compose` or Swarm
agent-image: docker
	@bash compose/images/build.sh agent

typecheck: node-deps
	tsc -p .

## test: the whole suite (unit, the plugin contract suite and end to end against the real Docker Engine); fails without Docker
test: deps images typecheck
	$(NODE) --test --test-reporter=spec test/unit/*.test.ts
	@bash scripts/test-lanes.sh $(NODE) test/contract/*.test.ts test/e2e/*.test.ts

test-unit: node-deps system-deps
	$(NODE) --test test/unit/*.test.ts

test-e2e: deps images
	@bash scripts/test-lanes.sh $(NODE) test/contract/*.test.ts test/e2e/*.test.ts

## bench: each plugin against its raw pipeline, measured in the same run (BENCH=volume,mariadb,... to choose; BENCH_JSON=dir)
BENCH ?= $(patsubst bench/%-bench.ts,%,$(wildcard bench/*-bench.ts))
bench: deps images bench-deps
	@set -e; [ -z "$$BENCH_JSON" ] || mkdir -p "$$BENCH_JSON"; for b in $(subst $(comma), ,$(BENCH)); do \
	  echo "=== bench: $$b"; \
	  BENCH_JSON=$${BENCH_JSON:+$$BENCH_JSON/$$b.json} $(NODE) bench/$$b-bench.ts; \
	done

## bench-deps: what only the benchmarks need (restic and borg, the incremental bench's peers)
bench-deps:
	@bash scripts/bench-deps.sh

## demo: the example stack in compose/ with labelled volumes, then a backup of it
demo: deps images
	bash compose/demo.sh

demo-down:
	bash compose/demo.sh down

clean:
	rm -rf backups
