#!/usr/bin/env python3
"""Simulated PXE clients for scripts/bench-pxe: each does what a PXE ROM + iPXE does up to its
script: DHCP DISCOVER/OFFER/REQUEST/ACK as a BIOS PXE client (option 60 PXEClient, arch 0),
TFTP of the boot file the offer names (blksize 1432), then HTTP GET of its per-MAC iPXE script.
All clients share one DHCP socket on port 68 (replies told apart by xid) and run concurrently.

usage: bench_pxe.py IFACE SERVER_IP HTTP_BASE N
Prints one JSON line: seconds until every client had its script, failures, bytes.
"""
import asyncio
import json
import socket
import struct
import sys
import time

IFACE, SERVER, HTTP_BASE, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
MAGIC = b"\x63\x82\x53\x63"


def mac_of(i):
    return bytes([0x52, 0x54, 0x00, 0x88, i >> 8, i & 0xFF])


def dhcp(kind, xid, mac, extra=b""):
    head = struct.pack("!BBBBIHHIIII", 1, 1, 6, 0, xid, 0, 0x8000, 0, 0, 0, 0)
    head += mac + b"\0" * 10 + b"\0" * 192
    opts = bytes([53, 1, kind])
    opts += bytes([60, 32]) + b"PXEClient:Arch:00000:UNDI:002001"
    opts += bytes([93, 2, 0, 0]) + bytes([94, 3, 1, 2, 1])
    return head + MAGIC + opts + extra + b"\xff"


def parse(data):
    if len(data) < 240 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    yiaddr = socket.inet_ntoa(data[16:20])
    siaddr = socket.inet_ntoa(data[20:24])
    fname = data[108:236].split(b"\0")[0].decode()
    opts, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, ln = data[i], data[i + 1]
        opts[code] = data[i + 2:i + 2 + ln]
        i += 2 + ln
    return xid, yiaddr, siaddr, fname, opts


class Dhcp(asyncio.DatagramProtocol):
    def __init__(self):
        self.waiting = {}

    def datagram_received(self, data, addr):
        p = parse(data)
        if p and p[0] in self.waiting and not self.waiting[p[0]].done():
            self.waiting[p[0]].set_result(p)


async def ask(proto, sock, xid, packet, tries=8):
    loop = asyncio.get_running_loop()
    for attempt in range(tries):
        fut = loop.create_future()
        proto.waiting[xid] = fut
        sock.sendto(packet, ("255.255.255.255", 67))
        try:
            return await asyncio.wait_for(fut, 1.0 + attempt)
        except asyncio.TimeoutError:
            continue
    raise RuntimeError("no DHCP answer")


class Tftp(asyncio.DatagramProtocol):
    def __init__(self, name, done):
        self.name, self.done, self.got, self.expect, self.peer = name, done, bytearray(), 1, None

    def connection_made(self, t):
        self.t = t
        rrq = b"\0\1" + self.name.encode() + b"\0octet\0blksize\x001432\0tsize\x000\0"
        t.sendto(rrq, (SERVER, 69))

    def datagram_received(self, data, addr):
        op = struct.unpack("!H", data[:2])[0]
        if op == 6:  # OACK
            self.peer = addr
            self.t.sendto(b"\0\4\0\0", addr)
        elif op == 3:
            block = struct.unpack("!H", data[2:4])[0]
            if block == (self.expect & 0xFFFF):
                self.got += data[4:]
                self.expect += 1
                if len(data) - 4 < 1432 and not self.done.done():
                    self.done.set_result(bytes(self.got))
            self.t.sendto(b"\0\4" + data[2:4], addr)
        elif op == 5 and not self.done.done():
            self.done.set_exception(RuntimeError("TFTP error " + data[4:].decode(errors="replace")))


async def tftp_get(name):
    loop = asyncio.get_running_loop()
    for _ in range(3):
        done = loop.create_future()
        t, _ = await loop.create_datagram_endpoint(lambda: Tftp(name, done), local_addr=("0.0.0.0", 0))
        try:
            return await asyncio.wait_for(done, 30)
        except (asyncio.TimeoutError, RuntimeError):
            await asyncio.sleep(0.5)
        finally:
            t.close()
    raise RuntimeError("TFTP failed")


async def http_get(url):
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    r, w = await asyncio.open_connection(host, int(port))
    w.write(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n".encode())
    body = await r.read()
    w.close()
    if b" 200 " not in body.split(b"\r\n", 1)[0]:
        raise RuntimeError("HTTP " + body.split(b"\r\n", 1)[0].decode())
    return body.split(b"\r\n\r\n", 1)[1]


async def client(i, proto, sock):
    mac = mac_of(i)
    xid = 0x10000000 + i
    offer = await ask(proto, sock, xid, dhcp(1, xid, mac))
    ip = offer[1]
    req = bytes([50, 4]) + socket.inet_aton(ip) + bytes([54, 4]) + socket.inet_aton(SERVER)
    await ask(proto, sock, xid, dhcp(3, xid, mac, req))
    boot = await tftp_get(offer[3])
    mac_s = "-".join(f"{b:02x}" for b in mac)
    script = await http_get(f"{HTTP_BASE}/ipxe/{mac_s}.ipxe")
    if not script.startswith(b"#!ipxe"):
        raise RuntimeError("not an iPXE script")
    return len(boot)


async def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, IFACE.encode())
    s.bind(("0.0.0.0", 68))
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Dhcp, sock=s)
    started = time.monotonic()
    results = await asyncio.gather(*(client(i, proto, s) for i in range(N)), return_exceptions=True)
    took = time.monotonic() - started
    failed = [str(r) for r in results if isinstance(r, Exception)]
    ok = [r for r in results if not isinstance(r, Exception)]
    print(json.dumps({"clients": N, "seconds": round(took, 3), "failed": len(failed),
                      "errors": sorted(set(failed))[:3], "boot_file_bytes": ok[0] if ok else 0}))


asyncio.run(main())
