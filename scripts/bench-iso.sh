#!/usr/bin/env bash
# Benchmark (not a test): remastering a ~700 MiB hybrid ISO in place (patch set; materialised
# copy) against `xorriso -indev in.iso -outdev out.iso -boot_image any replay -map …` (what
# lorax's mkksiso does), in one run, printing the ratio. Also times the patch set on the small
# fixture to show that its cost does not depend on the image size.
# Usage: scripts/bench-iso.sh [PAD_MIB (default 700)] [RUNS (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
pad=${1:-700}
runs=${2:-5}
work=${BENCH_DIR:-target/bench-iso}
mkdir -p "$work"
cargo build --release --quiet --bin ironcast
bin=target/release/ironcast
big=$work/debian-${pad}m.iso
small=$work/debian-small.iso
[ -s "$big" ] || PAD_MIB=$pad fixtures/iso/build.sh debian "$big"
[ -s "$small" ] || fixtures/iso/build.sh debian "$small"
args="console=ttyS0,115200 ironcast.bench=1"

now() { date +%s.%N; }
# best RUNS CMD...: the fastest of RUNS runs, in seconds.
best() {
  local n=$1 b=
  shift
  for _ in $(seq "$n"); do
    local t0 t1 d
    t0=$(now)
    "$@" >/dev/null 2>&1
    t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$d < $b" | bc -l)" = 1 ]; then b=$d; fi
  done
  echo "$b"
}

# The edited grub.cfg xorriso maps in, made the same way ours is.
"$bin" iso remaster "$big" --append "$args" --output "$work/ours.iso" 2>/dev/null
xorriso -osirrox on -indev "$work/ours.iso" -extract /boot/grub/grub.cfg "$work/grub.cfg" >/dev/null 2>&1
chmod u+w "$work/grub.cfg"

size=$(stat -c %s "$big")
t_patch=$(best "$runs" "$bin" iso remaster "$big" --append "$args" --patch "$work/p.json")
t_small=$(best "$runs" "$bin" iso remaster "$small" --append "$args" --patch "$work/p-small.json")
t_mat=$(best 3 sh -c "rm -f '$work/ours.iso'; '$bin' iso remaster '$big' --append '$args' --output '$work/ours.iso'")
t_xorriso=$(best 3 sh -c "rm -f '$work/xorriso.iso'; xorriso -indev '$big' -outdev '$work/xorriso.iso' -boot_image any replay -map '$work/grub.cfg' /boot/grub/grub.cfg")

printf 'image: %s (%d MiB); best of %d (xorriso and materialise: best of 3); warm page cache\n' "$big" $((size >> 20)) "$runs"
printf '  ironcast patch set           %8.4f s   (small %d MiB image: %.4f s)\n' "$t_patch" $(($(stat -c %s "$small") >> 20)) "$t_small"
printf '  ironcast materialised copy   %8.4f s\n' "$t_mat"
printf '  xorriso -boot_image replay   %8.4f s\n' "$t_xorriso"
printf '  ratio xorriso / patch set    %8.1fx   (goal >= 30x)\n' "$(echo "$t_xorriso / $t_patch" | bc -l)"
printf '  ratio xorriso / materialised %8.1fx\n' "$(echo "$t_xorriso / $t_mat" | bc -l)"
printf '  patch set size: %d bytes JSON\n' "$(stat -c %s "$work/p.json")"
rm -f "$work/ours.iso" "$work/xorriso.iso"
