#!/usr/bin/env bash
# Benchmark (on demand, not part of the test suite): memory and wall time of a simulated BMC
# fleet, `ironcast bmc-sim --nodes N` side by side with sushy-emulator --fake holding N fake
# systems. Both are driven through the same virtual-media boot of every node (eject, insert an
# IMAGE_SIZE image the BMC downloads, one-time Cd override, power on, power off) by
# examples/redfish_fleet_load.rs, CONCURRENCY nodes at a time. Prints VmRSS idle and after
# the run, peak (VmHWM), the time, and the ratios sushy/ironcast. sushy gets at most
# SUSHY_CONCURRENCY (10) parallel clients: beyond that its SQLite state fails with "unable to
# open database file". BASELINE=0 skips sushy (it needs ~1.5 GB and many minutes at 1,000).
#   NODES=100 CONCURRENCY=50 IMAGE_SIZE=262144 PROFILE=debug scripts/bench-redfish-fleet.sh
#   NODES=1000 BASELINE=0 scripts/bench-redfish-fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${NODES:-1000}
C=${CONCURRENCY:-100}
IMG=${IMAGE_SIZE:-1048576}
SC=${SUSHY_CONCURRENCY:-10}
PROFILE=${PROFILE:-debug}
export PATH="${IRONCAST_VENV:-/opt/ironcast-venv}/bin:$PATH"
if [ "$PROFILE" = release ]; then rel=--release; else rel=; fi
cargo build -q $rel --bin ironcast --example redfish_fleet_load
bin=target/$PROFILE
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# ironcast bmc-sim
"$bin/ironcast" bmc-sim --nodes "$N" >"$work/ours.txt" 2>"$work/ours.log" &
ours=$!; pids+=("$ours")
for _ in $(seq 1 300); do [ "$(wc -l <"$work/ours.txt")" -ge "$N" ] && break; sleep 0.1; done
ours_idle=$(kb "$ours" VmRSS)
ours_run=$("$bin/examples/redfish_fleet_load" --addresses "$work/ours.txt" --concurrency "$C" \
  --image-size "$IMG" --username admin --password password)
ours_after=$(kb "$ours" VmRSS); ours_peak=$(kb "$ours" VmHWM)

printf '%-22s %10s %10s %10s   %s\n' "fleet ($N nodes)" "idle kB" "after kB" "peak kB" "load run"
printf '%-22s %10s %10s %10s   %s\n' "ironcast bmc-sim" "$ours_idle" "$ours_after" "$ours_peak" "$ours_run"
[ "${BASELINE:-1}" = 0 ] && exit 0

# sushy-emulator --fake with N systems, private state and temp dirs
port=$(free_port)
mkdir -p "$work/state" "$work/tmp"
python3 - "$N" "$port" "$work" >"$work/sushy.conf" <<'PY'
import sys, uuid
n, port, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
systems = [dict(uuid=str(uuid.UUID(int=i + 1)), name=f"fake-{i}", power_state="Off",
                external_notifier=False, nics=[]) for i in range(n)]
print(f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}")
print(f"SUSHY_EMULATOR_STATE_DIR = '{work}/state'\nSUSHY_EMULATOR_FAKE_DRIVER = True")
print(f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}")
PY
TMPDIR="$work/tmp" sushy-emulator --config "$work/sushy.conf" --fake >"$work/sushy.log" 2>&1 &
sushy=$!; pids+=("$sushy")
wait_port "$port"
python3 -c "import uuid
for i in range($N): print(f'redfish+http://127.0.0.1:$port/redfish/v1/Systems/{uuid.UUID(int=i + 1)}')" >"$work/sushy.txt"
sushy_idle=$(kb "$sushy" VmRSS)
sushy_run=$("$bin/examples/redfish_fleet_load" --addresses "$work/sushy.txt" --concurrency "$SC" --image-size "$IMG")
sushy_after=$(kb "$sushy" VmRSS); sushy_peak=$(kb "$sushy" VmHWM)

printf '%-22s %10s %10s %10s   %s\n' "sushy-emulator --fake" "$sushy_idle" "$sushy_after" "$sushy_peak" "$sushy_run"
secs() { sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$1"; }
awk -v a="$ours_peak" -v b="$sushy_peak" -v ta="$(secs "$ours_run")" -v tb="$(secs "$sushy_run")" \
  'BEGIN { printf "ratio sushy/ironcast: peak memory %.1fx, load time %.1fx\n", b/a, tb/ta }'
