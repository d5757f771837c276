"""A local stand-in for the Hugging Face hub (standard library only), for tests/download.rs.

Serves a directory of repositories, ROOT/OWNER/REPO/FILE (FILE may be nested), the way the hub
does:

- HEAD/GET /OWNER/REPO/resolve/REVISION/FILE answers with X-Repo-Commit (40 hex digits derived
  from the repository's content), and
  - for LFS files (every file except *.json, *.txt, *.md): 302 to
    http://127.0.0.1:CDN_PORT/lfs-objects/SHA256 (a second listening socket: another origin, as
    the hub's storage host is), with X-Linked-Etag: "SHA256", X-Linked-Size and ETag;
  - for other files: 200 with the bytes, ETag: "GIT-BLOB-SHA1" and Content-Length.
- GET /lfs-objects/SHA256 serves the bytes, honouring Range (206 + Content-Range) unless
  --no-range is given (then 200 with the whole body).
- REVISION is `main` or the commit hash; other revisions are 404 (X-Error-Code:
  RevisionNotFound), missing files 404 (EntryNotFound), missing repositories 404 (RepoNotFound).

Knobs (command line, or POST /_mock/config with a JSON object of the same names with '_'):
  --cut-after K --cut-count N   the first N body transfers stop after K bytes (connection closed)
  --no-range                    ignore Range headers (200, whole body)
  --token TOK                   resolve requests need `Authorization: Bearer TOK` (else 401)
  --rename OLD/REPO=NEW/REPO    resolve requests for OLD/REPO redirect (307, relative) to NEW/REPO
  --wrong-sha                   announce a wrong sha256 (X-Linked-Etag) for LFS files
  --throttle-ms MS              sleep MS after each 16 KiB chunk of a body

GET /_mock/log returns every request so far as JSON: [{"server": "hub"|"cdn", "method", "path",
"range", "authorization"}]. The first stdout line is the hub's port, the second `cdn PORT`. The
server exits when its standard input closes.
"""

import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 16 * 1024
NOT_LFS = (".json", ".txt", ".md")


class State:
    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.knobs = {
            "cut_after": args.cut_after,
            "cut_count": args.cut_count,
            "no_range": args.no_range,
            "token": args.token,
            "rename": dict(pair.split("=", 1) for pair in args.rename),
            "wrong_sha": args.wrong_sha,
            "throttle_ms": args.throttle_ms,
        }
        self.lock = threading.Lock()
        self.log = []
        self.hashes = {}
        self.cdn_port = None

    def file_hashes(self, path):
        """(sha256, git blob sha1, size) of a file, cached by size and mtime."""
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self.lock:
            if key in self.hashes:
                return self.hashes[key]
        sha256 = hashlib.sha256()
        sha1 = hashlib.sha1(b"blob %d\0" % stat.st_size)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha256.update(block)
                sha1.update(block)
        value = (sha256.hexdigest(), sha1.hexdigest(), stat.st_size)
        with self.lock:
            self.hashes[key] = value
        return value

    def repo_files(self, repo_dir):
        files = []
        for base, _, names in os.walk(repo_dir):
            for name in names:
                full = os.path.join(base, name)
                files.append(os.path.relpath(full, repo_dir).replace(os.sep, "/"))
        return sorted(files)

    def commit(self, repo_dir):
        digest = hashlib.sha1()
        for rel in self.repo_files(repo_dir):
            digest.update(rel.encode() + b"\0" + self.file_hashes(os.path.join(repo_dir, rel))[0].encode())
        return digest.hexdigest()

    def find_blob(self, sha256):
        for base, _, names in os.walk(self.root):
            for name in names:
                full = os.path.join(base, name)
                if self.file_hashes(full)[0] == sha256:
                    return full
        return None

    def take_cut(self):
        """Whether this body transfer is cut, and after how many bytes."""
        with self.lock:
            if self.knobs["cut_count"] > 0 and self.knobs["cut_after"] is not None:
                self.knobs["cut_count"] -= 1
                return self.knobs["cut_after"]
        return None


def make_handler(state, server_name):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet
            pass

        def record(self):
            with state.lock:
                state.log.append(
                    {
                        "server": server_name,
                        "method": self.command,
                        "path": self.path,
                        "range": self.headers.get("Range"),
                        "authorization": self.headers.get("Authorization"),
                    }
                )

        def reply(self, status, headers=(), body=b""):
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def do_HEAD(self):
            self.handle_any()

        def do_GET(self):
            self.handle_any()

        def do_POST(self):
            self.record()
            if self.path == "/_mock/config":
                length = int(self.headers.get("Content-Length", "0"))
                update = json.loads(self.rfile.read(length) or b"{}")
                with state.lock:
                    state.knobs.update(update)
                self.reply(200, [("Content-Type", "application/json")], b"{}")
            else:
                self.reply(404)

        def handle_any(self):
            path = urllib.parse.urlsplit(self.path).path
            if path == "/_mock/log":
                with state.lock:
                    body = json.dumps(state.log).encode()
                return self.reply(200, [("Content-Type", "application/json")], body)
            self.record()
            parts = path.split("/")
            if len(parts) >= 3 and parts[1] == "lfs-objects":
                blob = state.find_blob(parts[2])
                if blob is None:
                    return self.reply(404, [("X-Error-Code", "EntryNotFound")])
                return self.send_file(blob, [("ETag", '"%s"' % parts[2])])
            # /OWNER/REPO/resolve/REVISION/FILE...
            if len(parts) < 6 or parts[3] != "resolve":
                return self.reply(404)
            owner, repo, revision = parts[1], parts[2], urllib.parse.unquote(parts[4])
            rel = urllib.parse.unquote("/".join(parts[5:]))
            with state.lock:
                token = state.knobs["token"]
                rename = dict(state.knobs["rename"])
                wrong_sha = state.knobs["wrong_sha"]
            if token is not None and self.headers.get("Authorization") != "Bearer " + token:
                return self.reply(401, [("X-Error-Message", "Invalid credentials in Authorization header")])
            if f"{owner}/{repo}" in rename:
                target = "/%s/resolve/%s" % (rename[f"{owner}/{repo}"], "/".join(parts[4:]))
                return self.reply(307, [("Location", target)])
            repo_dir = os.path.join(state.root, owner, repo)
            if not os.path.isdir(repo_dir):
                return self.reply(404, [("X-Error-Code", "RepoNotFound")])
            commit = state.commit(repo_dir)
            if revision not in ("main", commit):
                return self.reply(404, [("X-Error-Code", "RevisionNotFound")])
            full = os.path.join(repo_dir, *rel.split("/"))
            if ".." in rel.split("/") or not os.path.isfile(full):
                return self.reply(404, [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", commit)])
            sha256, sha1, size = state.file_hashes(full)
            if rel.endswith(NOT_LFS):
                return self.send_file(full, [("ETag", '"%s"' % sha1), ("X-Repo-Commit", commit)])
            announced = hashlib.sha256(sha256.encode()).hexdigest() if wrong_sha else sha256
            location = "http://127.0.0.1:%d/lfs-objects/%s" % (state.cdn_port, sha256)
            self.reply(
                302,
                [
                    ("Location", location),
                    ("X-Repo-Commit", commit),
                    ("X-Linked-Etag", '"%s"' % announced),
                    ("X-Linked-Size", str(size)),
                    ("ETag", '"%s"' % announced),
                ],
            )

        def send_file(self, full, headers):
            size = os.path.getsize(full)
            with state.lock:
                no_range = state.knobs["no_range"]
                throttle = state.knobs["throttle_ms"] / 1000.0
            start, status = 0, 200
            wanted = self.headers.get("Range")
            if wanted and not no_range and wanted.startswith("bytes="):
                first, _, last = wanted[len("bytes="):].partition("-")
                start = int(first or 0)
                if start >= size:
                    return self.reply(416, [("Content-Range", "bytes */%d" % size)])
                status = 206
                end = int(last) if last else size - 1
                headers = headers + [("Content-Range", "bytes %d-%d/%d" % (start, end, size))]
            else:
                end = size - 1
            length = end - start + 1
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if self.command == "HEAD":
                return
            cut = state.take_cut()
            sent = 0
            with open(full, "rb") as f:
                f.seek(start)
                while sent < length:
                    chunk = f.read(min(CHUNK, length - sent))
                    if not chunk:
                        break
                    if cut is not None and sent + len(chunk) > cut:
                        chunk = chunk[: max(cut - sent, 0)]
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if throttle:
                        self.wfile.flush()
                        time.sleep(throttle)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-body (a cancelled or cut transfer) is expected.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--cut-after", type=int)
    parser.add_argument("--cut-count", type=int, default=0)
    parser.add_argument("--no-range", action="store_true")
    parser.add_argument("--token")
    parser.add_argument("--rename", action="append", default=[])
    parser.add_argument("--wrong-sha", action="store_true")
    parser.add_argument("--throttle-ms", type=float, default=0.0)
    args = parser.parse_args()
    state = State(args)
    hub = Server(("127.0.0.1", 0), make_handler(state, "hub"))
    cdn = Server(("127.0.0.1", 0), make_handler(state, "cdn"))
    state.cdn_port = cdn.server_address[1]
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # One write: the reader may stop reading after the first line.
    sys.stdout.write("%d\ncdn %d\n" % (hub.server_address[1], state.cdn_port))
    sys.stdout.flush()
    # Exit when the test that started the server goes away.
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
