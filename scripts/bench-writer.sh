#!/usr/bin/env bash
# Writer benchmark (not a test): ours side by side with the baselines, in one run, printing
# ratios. Needs root (loop device), qemu-img, bmaptool, blkdiscard, nginx.
#
#  1. 2 GiB raw image with 220 MiB of random data, to a dirty loop device:
#     ironcast image write --checksum (verifies sha256 of all 2 GiB) vs
#     dd bs=4M oflag=direct, qemu-img convert -t none, blkdiscard -z + bmaptool copy (with and
#     without its own data-range verification); and ours without a checksum. Ours runs with
#     --direct (O_DIRECT), as dd and qemu-img do; one line shows ours buffered for reference.
#  2. The same disk as a 2 GiB qcow2: ours streamed over HTTP from nginx on 127.0.0.1 vs
#     qemu-img convert -t none from the local file.
#  3. The sha256 floor for the verified write: `openssl dgst -sha256` of the raw image (read
#     and hash; coreutils sha256sum is not used because it may lack SHA-NI), and the pure
#     compute time for 2 GiB from `openssl speed`.
# Every run ends with the data on disk (fsync / O_DIRECT) and is checked with cmp afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin ironcast
bin=$PWD/target/release/ironcast
work=$(mktemp -d /var/tmp/ironcast-bench-writer.XXXXXX)
loopdev=
nginx_pid=
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

size=$((2 * 1024 * 1024 * 1024))
img=$work/disk.raw
truncate -s $size "$img"
# 22 regions of 10 MiB = 220 MiB of data, spread over the disk.
for i in $(seq 0 21); do
  dd if=/dev/urandom of="$img" bs=1M count=10 seek=$((i * 93)) conv=notrunc status=none
done
sum=$(sha256sum "$img" | cut -d' ' -f1)
qemu-img convert -O qcow2 "$img" "$work/disk.qcow2"
bmaptool -q create -o "$work/disk.bmap" "$img"
dd if=/dev/urandom of="$work/dirt" bs=4M count=$((size / 4194304)) status=none
truncate -s $size "$work/backing"
loopdev=$(losetup -f --show "$work/backing")

dirty() { dd if="$work/dirt" of="$loopdev" bs=4M oflag=direct status=none; sync; }
warm() { cat "$img" "$work/disk.qcow2" > /dev/null; }
check() { cmp -n $size "$img" "$loopdev" || { echo "MISMATCH after $1" >&2; exit 1; }; }
declare -A t
run() { # name, command...
  local name=$1; shift
  dirty; warm
  local s e
  s=$(date +%s.%N)
  "$@" > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
  sync
  e=$(date +%s.%N)
  t[$name]=$(echo "$e - $s" | bc)
  check "$name"
  printf '%-36s %6.2f s\n' "$name" "${t[$name]}"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
  access_log off;
  client_body_temp_path $work/nginx-tmp;
  proxy_temp_path $work/nginx-tmp;
  fastcgi_temp_path $work/nginx-tmp;
  uwsgi_temp_path $work/nginx-tmp;
  scgi_temp_path $work/nginx-tmp;
  server { listen 127.0.0.1:$port; root $work; sendfile on; }
}
CONF
mkdir -p "$work/nginx-tmp"
# nginx workers run unprivileged: let them read the image.
chmod 755 "$work" && chmod 644 "$work/disk.qcow2"
nginx -c "$work/nginx.conf" -p "$work" & nginx_pid=$!
sleep 1

echo "== 2 GiB raw, 220 MiB data, dirty loop device =="
run "dd bs=4M oflag=direct" dd if="$img" of="$loopdev" bs=4M oflag=direct
run "qemu-img convert -t none" qemu-img convert -t none -n -O raw "$img" "$loopdev"
run "blkdiscard -z + bmaptool copy" sh -c "blkdiscard -z '$loopdev' && bmaptool -q copy --bmap '$work/disk.bmap' '$img' '$loopdev'"
run "blkdiscard -z + bmaptool --no-verify" sh -c "blkdiscard -z '$loopdev' && bmaptool -q copy --no-verify --bmap '$work/disk.bmap' '$img' '$loopdev'"
run "ironcast (sha256 verified)" "$bin" image write --quiet --direct --checksum "sha256:$sum" "$img" "$loopdev"
run "ironcast (no checksum)" "$bin" image write --quiet --direct "$img" "$loopdev"
run "ironcast (sha256, buffered)" "$bin" image write --quiet --checksum "sha256:$sum" "$img" "$loopdev"
echo "== 2 GiB qcow2 =="
qsum=$(sha256sum "$work/disk.qcow2" | cut -d' ' -f1)
run "qemu-img convert -t none (file)" qemu-img convert -t none -n -O raw "$work/disk.qcow2" "$loopdev"
run "ironcast qcow2 over HTTP (sha256)" "$bin" image write --quiet --direct --checksum "sha256:$qsum" "http://127.0.0.1:$port/disk.qcow2" "$loopdev"
echo "== sha256 floor (2 GiB raw image) =="
warm
s=$(date +%s.%N)
openssl dgst -sha256 "$img" > /dev/null
e=$(date +%s.%N)
t[floor]=$(echo "$e - $s" | bc)
printf '%-36s %6.2f s\n' "openssl dgst -sha256 (read + hash)" "${t[floor]}"
# `openssl speed` prints the rate in thousands of bytes per second on its last line.
rate=$(openssl speed -evp sha256 -bytes 4194304 -seconds 2 2>/dev/null | tail -1 | awk '{print $NF}' | tr -d k)
t[compute]=$(echo "scale=3; $size / ($rate * 1000)" | bc)
printf '%-36s %6.2f s\n' "sha256 compute only (openssl speed)" "${t[compute]}"

ours=${t["ironcast (sha256 verified)"]}
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
echo "== ratios (baseline time / ours; >1 means ours is faster) =="
echo "vs dd:                  $(ratio "${t["dd bs=4M oflag=direct"]}" "$ours")x  (goal >= 3)"
echo "vs qemu-img convert:    $(ratio "${t["qemu-img convert -t none"]}" "$ours")x"
echo "vs blkdiscard+bmaptool (bmap sha256 of data ranges): $(ratio "${t["blkdiscard -z + bmaptool copy"]}" "$ours")x  (goal >= 1)"
echo "vs blkdiscard+bmaptool --no-verify:                 $(ratio "${t["blkdiscard -z + bmaptool --no-verify"]}" "$ours")x"
echo "ours without checksum vs bmaptool --no-verify:      $(ratio "${t["blkdiscard -z + bmaptool --no-verify"]}" "${t["ironcast (no checksum)"]}")x  (goal >= 1)"
echo "ours without checksum vs dd:                        $(ratio "${t["dd bs=4M oflag=direct"]}" "${t["ironcast (no checksum)"]}")x  (goal >= 3)"
echo "qcow2 HTTP vs qemu-img file: $(ratio "${t["qemu-img convert -t none (file)"]}" "${t["ironcast qcow2 over HTTP (sha256)"]}")x  (goal >= 1)"
echo "== verified write vs the sha256 floor (ours / floor; 1 = as fast as hashing alone) =="
echo "vs openssl dgst (read + hash): $(ratio "$ours" "${t[floor]}")x"
echo "vs sha256 compute only:        $(ratio "$ours" "${t[compute]}")x"
