#!/usr/bin/env bash
# Runs the ISO engine's cargo-fuzz targets for a while and prints how many executions ran clean.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Usage: scripts/fuzz-iso.sh [SECONDS_PER_TARGET (default 120)]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
corpus=target/fuzz-iso-corpus
mkdir -p "$corpus/iso_reader" "$corpus/config_patchers"
# Seeds: a small unpadded ISO, and every fixture config text.
if [ ! -s "$corpus/iso_reader/seed.iso" ]; then
  work=$(mktemp -d)
  mkdir -p "$work/t/boot/grub" "$work/t/isolinux"
  printf 'menuentry "l" {\n linux /k q --- x\n}\n' >"$work/t/boot/grub/grub.cfg"
  printf 'label l\n kernel /k\n append q\ninclude x.cfg\n' >"$work/t/isolinux/isolinux.cfg"
  printf 'label m\n linux /k\n' >"$work/t/isolinux/x.cfg"
  xorriso -as mkisofs -quiet -no-pad -r -J -o "$corpus/iso_reader/seed.iso" "$work/t" 2>/dev/null
  rm -rf "$work"
fi
awk 'BEGIN{n=0} /<<.C.$/{f=1; n++; file=sprintf("'"$corpus"'/config_patchers/seed%03d", n); next} /^C$/{f=0} f{print > file}' fixtures/iso/build.sh fixtures/iso/boot.sh
for t in iso_reader config_patchers; do
  max_len=4096
  [ "$t" = iso_reader ] && max_len=262144
  log=target/fuzz-iso-$t.log
  (cd fuzz && cargo +nightly fuzz run -s none "$t" "../$corpus/$t" -- \
    -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=1024 -print_final_stats=1) >"$log" 2>&1 || {
    echo "$t: FAILED, see $log"
    tail -30 "$log"
    exit 1
  }
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  echo "$t: $runs executions in ${secs}s, no crash"
done
