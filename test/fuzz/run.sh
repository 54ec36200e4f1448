#!/usr/bin/env bash
# Fuzz everything for a bounded time.
#   test/fuzz/run.sh [seconds-per-target]      (default 60)
# 1. Builds every native libFuzzer target test/fuzz/*_fuzz.cc (with ASan and
#    UBSan) into build/fuzz/ — each target names the native/ sources it needs
#    in a "// fuzz-sources:" line and extra link flags in "// fuzz-libs:" —
#    and runs each for the given seconds. Targets: rtp_parser_fuzz,
#    session_rx_fuzz, rtcp_parser_fuzz, dtmf_fuzz, dtmf_sender_fuzz, dtmf_inband_fuzz,
#    jitter_buffer_fuzz, vad_frame_cutter_fuzz, vad_read_ahead_fuzz, srtp_unprotect_fuzz.
# 2. Runs every test/fuzz/*.fuzz.ts with `node --import tsx <file> <seconds>`.
# Exits non-zero if any build fails or any target crashes; crash inputs are
# kept in build/fuzz/crashes/.
set -uo pipefail
secs="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/build/fuzz"
mkdir -p "$out/crashes"
cxx="${FUZZ_CXX:-clang++}"
failed=()

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
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$out/$name.log" | sed "s/^/fuzz: $name /"
  fi
done

for f in "$root"/test/fuzz/*.fuzz.ts; do
  [ -e "$f" ] || continue
  name="$(basename "$f")"
  echo "fuzz: running $name for ${secs}s"
  if ! (cd "$root" && node --import tsx "$f" "$secs"); then
    echo "fuzz: FAILED $name"; failed+=("$name")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets passed"
