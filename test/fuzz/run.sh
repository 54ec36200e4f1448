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
# Targets run in parallel (FUZZ_JOBS, default the number of cores).
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

# Targets run FUZZ_JOBS at a time (default: the number of cores). Each target writes its own
# result lines to $out/<name>.result ("ok <summary>" or "fail <reason>"); the summary is read
# back from those in a fixed order, so the report does not depend on which job finished first.
jobs="${FUZZ_JOBS:-$(nproc)}"

native_target() {  # build (when a source is newer) and run one libFuzzer target
  local src="$1" name deps libs bin dep_paths newest_dep srcs corpus execs cov d
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
    # shellcheck disable=SC2086 # $libs is a list of linker flags
    if ! "$cxx" -std=c++17 -Wall -Wextra -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$root/native" -isystem /usr/include/opus "$src" "${srcs[@]}" -o "$bin.tmp" $libs || ! mv "$bin.tmp" "$bin"; then
      echo "fuzz: BUILD FAILED $name"; echo "fail $name (build)" > "$out/$name.result"; return
    fi
  fi
  corpus="$out/corpus/$name"
  mkdir -p "$corpus"
  seed_rtp "$corpus"
  echo "fuzz: running $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="$out/crashes/$name-" "$corpus" > "$out/$name.log" 2>&1; then
    echo "fuzz: CRASH in $name (see $out/$name.log)"; tail -40 "$out/$name.log"; echo "fail $name" > "$out/$name.result"
  else
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/$name.log" | tail -1)"
    echo "fuzz: $name executions=${execs:-?} coverage(${cov:-cov: ? ft: ?}) corpus=$(ls "$corpus" | wc -l)"
    echo "ok $name execs=${execs:-?} ${cov:-}" > "$out/$name.result"
  fi
}

ts_target() {  # run one TypeScript target, then a short V8-coverage run of it
  local f="$1" name base covdir execs cov
  name="$(basename "$f")"
  base="${name%.fuzz.ts}"
  echo "fuzz: running $name for ${secs}s"
  covdir="$out/v8cov/$base"
  rm -rf "$covdir"
  if ! (cd "$root" && node --import tsx "$f" "$secs" > "$out/$base.log"); then
    tail -1 "$out/$base.log"; echo "fuzz: FAILED $name"; echo "fail $name" > "$out/$base.result"; return
  fi
  tail -1 "$out/$base.log"
  execs="$(tail -1 "$out/$base.log" | grep -oE '"execs":[0-9]+' | cut -d: -f2)"
  # coverage from a short second run under V8 block coverage (it slows the target ~10x, so the
  # timed run above stays uninstrumented)
  (cd "$root" && NODE_V8_COVERAGE="$covdir" node --import tsx "$f" "${FUZZ_COVERAGE_SECONDS:-3}" >/dev/null 2>&1)
  node "$root/test/fuzz/v8-coverage.mjs" "$covdir" "$base" > "$out/$base.coverage"
  grep '^fuzz:' "$out/$base.coverage"
  cov="$(tail -1 "$out/$base.coverage" | grep -oE '"functions":\[[0-9]+,[0-9]+\],"blocks":\[[0-9]+,[0-9]+\]' | head -1)"
  echo "fuzz: $base executions=${execs:-?} coverage(${cov:-?})"
  echo "ok $base execs=${execs:-?} ${cov:-}" > "$out/$base.result"
}

targets=()
for src in "$root"/test/fuzz/*_fuzz.cc; do [ -e "$src" ] && targets+=("native:$src"); done
for f in "$root"/test/fuzz/*.fuzz.ts; do [ -e "$f" ] && targets+=("ts:$f"); done
rm -f "$out"/*.result
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  # each job's output is kept whole and printed when it ends, so lines of two targets never interleave
  ( kind="${t%%:*}"; path="${t#*:}"; b="$(basename "$path")"
    if [ "$kind" = native ]; then native_target "$path" > "$out/${b%.cc}.out" 2>&1; cat "$out/${b%.cc}.out"
    else ts_target "$path" > "$out/${b%.fuzz.ts}.out" 2>&1; cat "$out/${b%.fuzz.ts}.out"; fi ) &
  running=$((running + 1))
done
wait

for t in "${targets[@]}"; do
  path="${t#*:}"; b="$(basename "$path")"; b="${b%.cc}"; b="${b%.fuzz.ts}"
  r="$(cat "$out/$b.result" 2>/dev/null || echo "fail $b (no result)")"
  case "$r" in
    ok\ *) summary+=("${r#ok }") ;;
    *) failed+=("${r#fail }") ;;
  esac
done

echo "fuzz: summary (executions and coverage per target; native: libFuzzer edges 'cov' and features 'ft'; TypeScript: V8 functions and blocks entered in src/)"
for l in "${summary[@]}"; do echo "fuzz:   $l"; done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets passed"
