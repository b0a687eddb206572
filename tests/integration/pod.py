#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""One stand-in pod: HTTP servers and a UDP echo server on its addresses.

Run inside the pods namespace by the integration harness (sgnet.py) and the
demo, one process per pod; a pod may have several addresses (--addr
repeated, IPv4 and IPv6: a dual-stack pod) and HTTP ports (--http-port
repeated: a service with several ports). Every request is logged, one line
each, with the client address the pod saw, so a test can tell which pod
served a connection and whether the gateway translated the source (nat
mode: the pod sees a SNAT address, never the client).

HTTP:
  GET /                   the pod's name and a newline; header X-Pod too
  GET /whoami             "NAME LOCAL_IP LOCAL_PORT CLIENT_IP CLIENT_PORT":
                          which address and port of the pod a connection
                          reached, and whom the pod saw
  GET /stream?bytes=N&seconds=S
                          N bytes of a fixed pattern (stream_pattern()) paced
                          over about S seconds: a long transfer that stays
                          open while a test reloads the gateway
  POST /sink              reads the whole body, answers "BYTES SHA256HEX":
                          an exact count of what crossed the gateway
UDP: any datagram is answered with the pod's name and a newline, but a
  probe of svcgw-bench --line-rate (a datagram starting with b"SGLR",
  app/svcgw-bench/linerate.h) is echoed whole with the pod address it
  arrived on appended as text, so the sender can tell which backend
  answered although every reply comes from the VIP. Probes come by the
  ten thousand: they are not logged.

Log lines (flushed at once): "http IP PORT PATH", "udp IP PORT DIGEST"
(see udp_digest()), and "abort IP PORT BYTES" for a stream the client
dropped.
Prints "ready" on stdout once both sockets are bound.
"""
import argparse
import hashlib
import http.server
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

CHUNK = 65536


def stream_pattern(offset, length):
    """Bytes [offset, offset + length) of the /stream body.

    A counter modulo 251 (a prime, so the pattern never lines up with a
    power-of-two chunk or segment size): a lost, repeated or reordered
    segment changes the digest of what arrives.
    """
    return bytes((offset + i) % 251 for i in range(length))


class Log:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="ascii", buffering=1)

    def write(self, line):
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()


def make_handler(name, log):
    body = (name + "\n").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "svcgw-test-pod"

        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            ip, port = self.client_address[:2]
            log.write(f"http {ip} {port} {self.path}")
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/":
                self.reply(200, body)
            elif url.path == "/whoami":
                lip, lport = self.connection.getsockname()[:2]
                self.reply(200, f"{name} {lip} {lport} {ip} {port}\n"
                           .encode())
            elif url.path == "/stream":
                self.stream(urllib.parse.parse_qs(url.query))
            else:
                self.reply(404, b"not found\n")

        def do_POST(self):
            ip, port = self.client_address[:2]
            log.write(f"http {ip} {port} POST{self.path}")
            if self.path != "/sink":
                self.reply(404, b"not found\n")
                return
            try:
                left = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.reply(411, b"length required\n")
                return
            digest = hashlib.sha256()
            count = 0
            while left > 0:
                data = self.rfile.read(min(left, CHUNK))
                if not data:
                    break
                digest.update(data)
                count += len(data)
                left -= len(data)
            self.reply(200, f"{count} {digest.hexdigest()}\n".encode())

        def reply(self, code, data):
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Pod", name)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def stream(self, query):
            try:
                total = int(query.get("bytes", ["0"])[0])
                seconds = float(query.get("seconds", ["0"])[0])
            except ValueError:
                self.reply(400, b"bad query\n")
                return
            if total < 0 or total > 1 << 32 or not 0 <= seconds <= 120:
                self.reply(400, b"bad query\n")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            self.send_header("X-Pod", name)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            # Pace by the clock, not by sleeping a fixed time per chunk, so
            # a slow path does not stretch the transfer further.
            start = time.monotonic()
            # Any chunk of the body is a slice of this block.
            block = stream_pattern(0, CHUNK + 251)
            sent = 0
            try:
                while sent < total:
                    n = min(CHUNK, total - sent)
                    off = sent % 251
                    self.wfile.write(block[off:off + n])
                    sent += n
                    due = start + seconds * sent / total
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                ip, port = self.client_address[:2]
                log.write(f"abort {ip} {port} {sent}")

    return Handler


class HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HTTPServer6(HTTPServer):
    address_family = socket.AF_INET6


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


# svcgw-bench --line-rate's probes start with this (linerate.h).
PROBE_MAGIC = b"SGLR"


def udp_echo(sock, name, log):
    reply = (name + "\n").encode()
    me = sock.getsockname()[0].encode()
    while True:
        data, peer = sock.recvfrom(65535)
        if data.startswith(PROBE_MAGIC):
            sock.sendto(data + me, peer)
            continue
        ip, port = peer[:2]
        log.write(f"udp {ip} {port} {udp_digest(data)}")
        sock.sendto(reply, peer)


def udp_digest(data):
    """What the UDP log line says of a datagram: "LENGTH:SHA256[:16]", so a
    test can tell that a datagram sent in fragments arrived whole."""
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()[:16]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--addr", required=True, action="append")
    ap.add_argument("--http-port", type=int, action="append")
    ap.add_argument("--udp-port", type=int, default=5353)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    # SIGTERM from the harness: leave through the normal exit path.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    log = Log(args.log)
    handler = make_handler(args.name, log)
    servers = []
    for addr in args.addr:
        for port in args.http_port or [8080]:
            cls = HTTPServer6 if family(addr) == socket.AF_INET6 \
                else HTTPServer
            servers.append(cls((addr, port), handler))
        udp = socket.socket(family(addr), socket.SOCK_DGRAM)
        udp.bind((addr, args.udp_port))
        threading.Thread(target=udp_echo, args=(udp, args.name, log),
                         daemon=True).start()
    for httpd in servers[1:]:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
