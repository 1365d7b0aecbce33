# wsgate's vocabulary: run, test, lint, fuzz, bench.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Debian packages the tests drive as real peers (nginx and haproxy: the end-to-end tests in
# gateway/e2e run them in the foreground on the example configs of sysctl/profiles), and gcc
# with the C library headers: go test -race needs cgo, which Go turns off without a C compiler.
APT_PKGS := redis-server redis-tools python3-websockets python3-msgpack python3-redis chromium nginx haproxy gcc libc6-dev
# Node.js for the JavaScript client's tests, from Debian when node or npm is missing. The
# client supports Node >= 20 (NODE_MIN); Debian 12's nodejs is 18, which its tests do not
# cover: deps warns, and README says to install Node 20+ first there.
NODE_PKGS := nodejs npm
NODE_MIN  := 20
# npm packages with a committed package-lock.json: `npm ci` when node_modules is missing.
NODE_DIRS := gateway/testdata/node gateway/client/js
FUZZTIME ?= 60s

.PHONY: all build run test deps lint fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/wsgate ./cmd/wsgate
	$(GO) build -o $(BIN)/wsbench ./cmd/wsbench

## run: the gateway on 127.0.0.1:8080 with the embedded broker and the demo chat page; nothing else needed.
## The binary runs directly (not under go run, which exits 1 when its child
## is interrupted), so Ctrl-C drains it and it exits 0 with no make error.
run:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/wsgate ./cmd/wsgate
	@echo "demo chat: http://127.0.0.1:8080/ (open it in several tabs)"
	$(BIN)/wsgate serve --echo --demo

## test: vet, lint, then every test with the race detector (fuzz seeds included).
test: deps lint
	$(GO) test -race -count=1 -timeout 14m ./...

## deps: install what the tests need when it is missing (CI starts bare). apt-get runs as
## root, or through sudo for anyone else; with everything present it installs nothing.
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="yes"; \
	command -v chromium >/dev/null || missing="yes"; \
	cc=$$($(GO) env CC); command -v "$${cc%% *}" >/dev/null || missing="yes"; \
	for b in nginx haproxy; do command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || missing="yes"; done; \
	/usr/bin/python3 -c 'import websockets, msgpack, redis' 2>/dev/null || missing="yes"; \
	pkgs=""; [ -z "$$missing" ] || pkgs=" $(APT_PKGS)"; \
	{ command -v node && command -v npm; } >/dev/null || pkgs="$$pkgs $(NODE_PKGS)"; \
	if [ -n "$$pkgs" ]; then \
		sudo=""; \
		if [ "$$(id -u)" != 0 ]; then \
			command -v sudo >/dev/null || { echo "make deps: installing$$pkgs needs root: run it as root, or install sudo"; exit 1; }; \
			sudo=sudo; \
		fi; \
		echo "installing$$pkgs"; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null || exit 1; \
	fi; \
	major=$$(node -p 'process.versions.node.split(".")[0]') || exit 1; \
	if [ "$$major" -lt $(NODE_MIN) ]; then \
		echo "make deps: warning: node $$(node --version): the JavaScript client's tests are written for Node >= $(NODE_MIN) (Debian 12's nodejs is 18); see README"; \
	fi
	@for d in $(NODE_DIRS); do \
		if [ ! -d $$d/node_modules ] && [ -f $$d/package-lock.json ]; then \
			(cd $$d && npm ci --no-audit --no-fund --silent) || exit 1; \
		fi; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## fuzz: each fuzz target for FUZZTIME (default 60s).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME) ./gateway/wsframe/
	$(GO) test -run '^$$' -fuzz '^FuzzNegotiate$$' -fuzztime $(FUZZTIME) ./gateway/deflate/
	$(GO) test -run '^$$' -fuzz '^FuzzInflate$$' -fuzztime $(FUZZTIME) ./gateway/deflate/
	$(GO) test -run '^$$' -fuzz '^FuzzDeflateDecoder$$' -fuzztime $(FUZZTIME) ./gateway/deflate/
	$(GO) test -run '^$$' -fuzz '^FuzzWindowBound$$' -fuzztime $(FUZZTIME) ./gateway/deflate/
	$(GO) test -run '^$$' -fuzz '^FuzzUpgrade$$' -fuzztime $(FUZZTIME) ./gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzServerCommand$$' -fuzztime $(FUZZTIME) ./gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzXFF$$' -fuzztime $(FUZZTIME) ./gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommandMsgpack$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommandJSON$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePublication$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendMessageJSON$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzParseFrame$$' -fuzztime $(FUZZTIME) ./bench/centrifugo/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeServerFrame$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzCountPongs$$' -fuzztime $(FUZZTIME) ./bench/floor/
	$(GO) test -run '^$$' -fuzz '^FuzzParsePush$$' -fuzztime $(FUZZTIME) ./bench/harness/wire/

## bench: the standard side-by-side comparison (wsgate, naive, Centrifugo); refreshes bench/README.md.
bench: build
	$(BIN)/wsbench all --target all --report bench --json bench/results.json

clean:
	rm -rf $(BIN)
