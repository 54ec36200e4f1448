#!/usr/bin/env bash
# Fuzz everything for a bounded time.
#   test/fuzz/run.sh [seconds-per-target]      (default 60)
# 1. Builds every native libFuzzer target test/fuzz/*_fuzz.cc (with ASan and
#    UBSan) into build/fuzz/ — each target names the native/ sources it needs
#    in a "// fuzz-sources:" line and extra link flags in "// fuzz-libs:" —
#    and runs each for the given seconds. Targets: rtp_parser_fuzz,
#    session_rx_fuzz, rtcp_parser_fuzz, dtmf_fuzz, dtmf_sender_fuzz, dtmf_inband_fuzz,
#    jitter_buffer_fuzz, vad_frame_cutter_fuzz, vad_read_ahead_fuzz, srtp_unprotect_fuzz.
# 2. Runs every test/fuzz/*.fuzz.ts with `node --import tsx <file> <seconds>` under
#    NODE_V8_COVERAGE, summarised by test/fuzz/v8-coverage.mjs (functions and blocks of src/
#    modules entered; a separate FUZZ_COVERAGE_SECONDS run, default 3). Prints executions and
#    coverage per target, then a summary table.
# Exits non-zero if any build fails or any target crashes; crash inputs are
# kept in build/fuzz/crashes/.
set -uo pipefail
secs="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/build/fuzz"
mkdir -p "$out/crashes"
cxx="${FUZZ_CXX:-clang++}"
failed=()
summary=()

seed_rtp() {  # a few valid and nearly valid RTP packets as a starting corpus
  local dir="$1"
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return
  printf '\x80\x00\x12\x34\x00\x00\x03\x20\xde\xad\xbe\xef\xff\xff\xff\xff' > "$dir/pcmu"
  printf '\x80\x88\x00\x01\x00\x00\x00\xa0\x00\x00\x00\x07\xd5\xd5' > "$dir/pcma-marker"
  printf '\xb2\x65\x00\x02\x00\x00\x01\x40\x00\x00\x00\x07\x00\x00\x00\x01\x00\x00\x00\x02\xbe\xde\x00\x01\x11\x22\x33\x44\x01\x8a\x00\xa0\x00\x00\x02' > "$dir/csrc-ext-pad"
  printf '\x81\xc8\x00\x06\x00\x00\x00\x07' > "$dir/rtcp"
}

for src in "$root"/test/fuzz/*_fuzz.cc; do
  [ -e "$src" ] || continue
  name="$(basename "$src" .cc)"
  deps="$(sed -n 's|^// fuzz-sources:||p' "$src" | head -1)"
  libs="$(sed -n 's|^// fuzz-libs:||p' "$src" | head -1)"
  bin="$out/$name"
  dep_paths=("$src" "$root"/native/*.h)
  for d in $deps; do dep_paths+=("$root/$d"); done
  newest_dep="$(ls -t "${dep_paths[@]}" | head -1)"
  if [ ! -x "$bin" ] || [ "$newest_dep" -nt "$bin" ]; then
    echo "fuzz: building $name"
    srcs=()
    for d in $deps; do srcs+=("$root/$d"); done
    if ! "$cxx" -std=c++17 -Wall -Wextra -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$root/native" -isystem /usr/include/opus "$src" "${srcs[@]}" -o "$bin" $libs; then
      echo "fuzz: BUILD FAILED $name"; failed+=("$name (build)"); continue
    fi
  fi
  corpus="$out/corpus/$name"
  mkdir -p "$corpus"
  seed_rtp "$corpus"
  echo "fuzz: running $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="$out/crashes/$name-" "$corpus" > "$out/$name.log" 2>&1; then
    echo "fuzz: CRASH in $name (see $out/$name.log)"; tail -40 "$out/$name.log"; failed+=("$name")
  else
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/$name.log" | tail -1)"
    echo "fuzz: $name executions=${execs:-?} coverage(${cov:-cov: ? ft: ?}) corpus=$(ls "$corpus" | wc -l)"
    summary+=("$name execs=${execs:-?} ${cov:-}")
  fi
done

for f in "$root"/test/fuzz/*.fuzz.ts; do
  [ -e "$f" ] || continue
  name="$(basename "$f")"
  echo "fuzz: running $name for ${secs}s"
  covdir="$out/v8cov/${name%.fuzz.ts}"
  rm -rf "$covdir"
  if ! (cd "$root" && node --import tsx "$f" "$secs" | tee "$out/${name%.fuzz.ts}.log" | tail -1); then
    echo "fuzz: FAILED $name"; failed+=("$name")
  fi
  execs="$(tail -1 "$out/${name%.fuzz.ts}.log" | grep -oE '"execs":[0-9]+' | cut -d: -f2)"
  # coverage from a short second run under V8 block coverage (it slows the target ~10x, so the
  # timed run above stays uninstrumented)
  (cd "$root" && NODE_V8_COVERAGE="$covdir" node --import tsx "$f" "${FUZZ_COVERAGE_SECONDS:-3}" >/dev/null 2>&1)
  node "$root/test/fuzz/v8-coverage.mjs" "$covdir" "${name%.fuzz.ts}" > "$out/${name%.fuzz.ts}.coverage"
  grep '^fuzz:' "$out/${name%.fuzz.ts}.coverage"
  cov="$(tail -1 "$out/${name%.fuzz.ts}.coverage" | grep -oE '"functions":\[[0-9]+,[0-9]+\],"blocks":\[[0-9]+,[0-9]+\]' | head -1)"
  echo "fuzz: ${name%.fuzz.ts} executions=${execs:-?} coverage(${cov:-?})"
  summary+=("${name%.fuzz.ts} execs=${execs:-?} ${cov:-}")
done

echo "fuzz: summary (executions and coverage per target; native: libFuzzer edges 'cov' and features 'ft'; TypeScript: V8 functions and blocks entered in src/)"
for l in "${summary[@]}"; do echo "fuzz:   $l"; done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets passed"
