#!/usr/bin/env python3
"""List benchmark driver (issue 16); run it through scripts/bench-list.

For each server under test (ironcast on SQLite, ironcast on PostgreSQL, OpenStack Ironic 39.0.0
on SQLite): enrol N fake-hardware nodes with 8 parallel POST clients, then time a walk over all
pages of GET /v1/nodes, all pages of /v1/nodes/detail, a filtered and sorted walk, and
`baremetal node list --limit 0`; then read the server's peak RSS (VmHWM). Every walk is
checked for its count, so a fast wrong answer cannot pass. Prints one table and the ratios.
Standard library only; talks to 127.0.0.1 only.
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

VERSION = "1.95"  # the newest microversion both servers speak
CLIENTS = 8
FILTERED = "resource_class=gold&provision_state=enroll&sort_key=name&sort_dir=desc&limit=100"


class Client:
    """One keep-alive HTTP/1.1 connection to the API."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def call(self, method, path, body=None):
        headers = {"X-OpenStack-Ironic-API-Version": VERSION, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)


def node_body(i):
    return {
        "driver": "fake-hardware",
        "name": "bench-%05d" % i,
        "resource_class": "gold" if i % 4 == 0 else "iron",
        "properties": {"cpus": 16, "memory_mb": 65536, "local_gb": 480, "cpu_arch": "x86_64"},
        "driver_info": {
            "redfish_address": "https://bmc-%05d.example.test" % i,
            "redfish_system_id": "/redfish/v1/Systems/1",
            "redfish_username": "admin",
            "redfish_password": "secret",
        },
        "extra": {"rack": "r%02d" % (i % 40), "slot": i % 42},
    }


def enrol(base, n):
    """POSTs n nodes from CLIENTS threads; seconds."""
    errors = []

    def worker(k):
        c = Client(base)
        for i in range(k, n, CLIENTS):
            status, body = c.call("POST", "/v1/nodes", node_body(i))
            if status != 201:
                errors.append((status, body))
                return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    if errors:
        sys.exit("enrolment failed: %s" % (errors[:3],))
    return took


def walk(base, path, follow_next):
    """Every page from path; (seconds, items, pages). follow_next=False builds the marker
    itself from the query (Ironic's next link drops filters)."""
    c = Client(base)
    items = pages = 0
    url = path
    t0 = time.monotonic()
    while url:
        status, body = c.call("GET", url)
        if status != 200:
            sys.exit("GET %s: %s %s" % (url, status, body))
        nodes = body["nodes"]
        items += len(nodes)
        pages += 1
        nxt = body.get("next")
        if not nxt or not nodes:
            break
        if follow_next:
            parts = urllib.parse.urlsplit(nxt)
            url = parts.path + "?" + parts.query
        else:
            url = path + "&marker=" + nodes[-1]["uuid"]
    return time.monotonic() - t0, items, pages


def cli_walk(base, baremetal):
    """`baremetal node list --limit 0`; (seconds, lines)."""
    env = dict(os.environ, OS_ENDPOINT=base, OS_AUTH_TYPE="none")
    env.pop("OS_CLOUD", None)
    t0 = time.monotonic()
    out = subprocess.run(
        [baremetal, "--os-baremetal-api-version", VERSION, "node", "list", "--limit", "0",
         "-f", "value", "-c", "UUID"],
        env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit("baremetal node list failed: %s" % out.stderr[-2000:])
    return took, len(out.stdout.split())


def tree(pid):
    """pid and every descendant (Ironic runs a master and a worker process)."""
    out, i = [pid], 0
    while i < len(out):
        try:
            with open("/proc/%d/task/%d/children" % (out[i], out[i])) as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
        i += 1
    return out


def memory_mib(pid, field):
    """Sum of a /proc status field (VmHWM, VmRSS) over the server's processes, MiB."""
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def wait_up(base, proc, secs=120):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("server exited with %s" % proc.returncode)
        try:
            if Client(base).call("GET", "/v1")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("server at %s did not answer within %ss" % (base, secs))


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_ironcast(binary, work, db_url):
    env = dict(os.environ,
               IRONCAST_CONDUCTOR__STATE_DIR=work,
               IRONCAST_CONDUCTOR__NAME="bench",
               IRONCAST_API__BIND="127.0.0.1:0",
               IRONCAST_IMAGESERVER__BIND="127.0.0.1:0",
               IRONCAST_DATABASE__URL=db_url)
    log = open(os.path.join(work, "serve.log"), "w")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=log,
                            text=True)
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.startswith("ironcast: API listening on "):
            base = line.split()[-1]
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            wait_up(base, proc)
            return proc, base
        if time.monotonic() > deadline:
            break
    proc.kill()
    sys.exit("ironcast serve did not start; see %s/serve.log" % work)


IRONIC_CONF = """[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = bench
enabled_hardware_types = fake-hardware
enabled_bios_interfaces = fake,no-bios
enabled_boot_interfaces = fake
enabled_console_interfaces = fake,no-console
enabled_deploy_interfaces = fake
enabled_firmware_interfaces = fake,no-firmware
enabled_inspect_interfaces = fake,no-inspect
enabled_management_interfaces = fake
enabled_network_interfaces = noop
enabled_power_interfaces = fake
enabled_raid_interfaces = fake,no-raid
enabled_rescue_interfaces = fake,no-rescue
enabled_storage_interfaces = noop
enabled_vendor_interfaces = fake,no-vendor
default_network_interface = noop
log_file = {work}/ironic.log
[database]
connection = sqlite:///{work}/ironic.db
[api]
host_ip = 127.0.0.1
port = {port}
api_workers = 1
[dhcp]
dhcp_provider = none
[oslo_concurrency]
lock_path = {work}/locks
"""


def start_ironic(venv, work):
    port = free_port()
    conf = os.path.join(work, "ironic.conf")
    with open(conf, "w") as f:
        f.write(IRONIC_CONF.format(work=work, port=port))
    subprocess.run([os.path.join(venv, "bin", "ironic-dbsync"), "--config-file", conf,
                    "create_schema"], check=True, capture_output=True)
    proc = subprocess.Popen([os.path.join(venv, "bin", "ironic"), "--config-file", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:%d" % port
    wait_up(base, proc)
    return proc, base


def stop(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(name, proc, base, n, baremetal):
    print("[%s] enrolling %d nodes with %d clients…" % (name, n, CLIENTS), flush=True)
    r = {"name": name}
    r["create"] = enrol(base, n)
    gold = len(range(0, n, 4))
    for key, path, follow, want in [
        ("list", "/v1/nodes", True, n),
        ("detail", "/v1/nodes/detail", True, n),
        ("filtered", "/v1/nodes?" + FILTERED, False, gold),
    ]:
        took, items, pages = walk(base, path, follow)
        if items != want:
            sys.exit("[%s] %s walk returned %d items, want %d" % (name, key, items, want))
        r[key] = took
        r[key + "_pages"] = pages
        print("[%s] %s: %d items in %d pages, %.2f s" % (name, key, items, pages, took),
              flush=True)
    r["cli"], lines = cli_walk(base, baremetal)
    if lines != n:
        sys.exit("[%s] baremetal node list --limit 0 printed %d nodes, want %d" % (name, lines, n))
    r["peak"] = memory_mib(proc.pid, "VmHWM")
    r["rss"] = memory_mib(proc.pid, "VmRSS")
    print("[%s] cli: %.2f s; peak RSS %.1f MiB, RSS now %.1f MiB" % (
        name, r["cli"], r["peak"], r["rss"]), flush=True)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--ironcast", required=True)
    ap.add_argument("--baremetal", required=True)
    ap.add_argument("--postgres-url", default="")
    ap.add_argument("--ironic-venv", default="")
    a = ap.parse_args()

    results = []
    work_root = tempfile.mkdtemp(prefix="bench-list-")
    try:
        targets = [("ironcast sqlite", "")]
        if a.postgres_url:
            targets.append(("ironcast postgres", a.postgres_url))
        for name, db in targets:
            work = os.path.join(work_root, name.replace(" ", "-"))
            os.makedirs(work)
            proc, base = start_ironcast(a.ironcast, work, db)
            try:
                results.append(run(name, proc, base, a.nodes, a.baremetal))
            finally:
                stop(proc)
        if a.ironic_venv:
            work = os.path.join(work_root, "ironic")
            os.makedirs(work)
            proc, base = start_ironic(a.ironic_venv, work)
            try:
                results.append(run("ironic 39.0.0", proc, base, a.nodes, a.baremetal))
            finally:
                stop(proc)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)

    cols = [("create", "create s"), ("list", "list-all s"), ("detail", "detail-all s"),
            ("filtered", "filtered s"), ("cli", "CLI --limit 0 s"), ("peak", "peak RSS MiB")]
    print()
    print("%-18s" % "%d nodes" % a.nodes + "".join("%16s" % c[1] for c in cols))
    for r in results:
        print("%-18s" % r["name"] + "".join("%16.2f" % r[c[0]] for c in cols))
    by = {r["name"]: r for r in results}
    base = by.get("ironic 39.0.0")
    if base:
        print()
        print("Ironic / ironcast (higher is better for ironcast; goal ≥ 10× on create, list, detail):")
        for r in results:
            if r is base:
                continue
            print("%-18s" % r["name"] + "".join(
                "%16s" % ("%.1f×" % (base[k] / r[k]) if r[k] else "-") for k, _ in cols))
    sq, pg = by.get("ironcast sqlite"), by.get("ironcast postgres")
    if sq and pg:
        print()
        print("PostgreSQL / SQLite time (goal ≤ 2×): " + ", ".join(
            "%s %.2f×" % (k, pg[k] / sq[k]) for k, _ in cols[:5]))
    if sq:
        print("CLI walk vs the server's own list-all walk: %.2f s vs %.2f s (the rest is the client)"
              % (sq["cli"], sq["list"]))


if __name__ == "__main__":
    main()
