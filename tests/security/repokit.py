"""Hostile repositories and remotes for the security tests, built with real git and real
sockets: trees written with git plumbing (so they may hold what `git add` would not: `.git`
entries, a million files from two small trees, one blob referenced many times), a TCP
listener that never answers, an HTTPS server that answers every request with one status,
and a git remote over HTTPS that wants a password.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.deploykit import GIT_ENV

SYMLINK, FILE, TREE = "120000", "100644", "040000"


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, input=data, check=True,
                            capture_output=True)
    return result.stdout.decode().strip()


def blob(repo: Path, data: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", data=data)


def blob_of_zeros(repo: Path, size: int) -> str:
    """A blob of `size` zero bytes, streamed into git (a few KB once compressed)."""
    with subprocess.Popen(["git", "hash-object", "-w", "--stdin"], cwd=repo, env=GIT_ENV,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            process.stdin.write(chunk)
        process.stdin.close()
        sha = process.stdout.read().decode().strip()
    assert process.returncode == 0
    return sha


def tree(repo: Path, entries: list[tuple[str, str, str]]) -> str:
    """A tree of (mode, name, sha) entries; names may hold any byte but NUL and '/'."""
    lines = b"".join(
        f"{mode} {'tree' if mode == TREE else 'blob'} {sha}\t{name}".encode() + b"\0"
        for mode, name, sha in entries)
    return git(repo, "mktree", "-z", data=lines)


@dataclass
class HostileRepo:
    path: Path
    sha: str

    @property
    def url(self) -> str:
        return f"file://{self.path}"


def hostile_repo(path: Path, entries: list[tuple[str, str, str]] | None = None,
                 root: str | None = None) -> HostileRepo:
    """A repository whose branch main is one commit of the given tree: `entries` hold
    file contents (str) for FILE and SYMLINK modes, or a tree SHA for TREE."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if root is None:
        root = tree(path, [(mode, name, value if mode == TREE else blob(path, value.encode()))
                           for mode, name, value in entries or []])
    sha = git(path, "commit-tree", root, "-m", "hostile content")
    git(path, "update-ref", "refs/heads/main", sha)
    return HostileRepo(path, sha)


def self_signed(directory: Path, address: str) -> tuple[Path, Path]:
    """A certificate for an IP address and its key (PEM files), for a real TLS server."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def https_status_server(directory: Path, address: str, status: str
                              ) -> tuple[asyncio.Server, int, Path]:
    """A real HTTPS server answering every request with `status` (e.g. "401 Unauthorized");
    returns the server, its port and the certificate git must trust (GIT_SSL_CAINFO)."""
    import ssl

    cert, key = self_signed(directory, address)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(f"HTTP/1.1 {status}\r\nWWW-Authenticate: Basic realm=\"git\"\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, address, 0, ssl=context)
    return server, server.sockets[0].getsockname()[1], cert


class Listener:
    """Accepts TCP on `host` and never says a word (a stalled TLS or SSH remote); counts
    the connections it holds and drops them all on close()."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.open: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self.most_at_once = 0

    async def start(self, host: str) -> Listener:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.open.add(writer)
            self.accepted += 1
            self.most_at_once = max(self.most_at_once, len(self.open))
            try:
                await reader.read()
            except OSError:
                pass
            finally:
                self.open.discard(writer)
                writer.close()

        self.server = await asyncio.start_server(handle, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.server.close()
        for writer in list(self.open):
            writer.transport.abort()
        await self.server.wait_closed()


class HttpsGitServer:
    """A real git remote over HTTPS (git's "dumb" HTTP protocol: the bare repository's files
    served as they are) that wants Basic credentials, in a thread of its own."""

    def __init__(self, bare: Path, address: str, user: str, password: str) -> None:
        import base64
        import http.server
        import ssl
        import threading

        git(bare, "repack", "-a", "-d", "-q")     # one pack: few requests over HTTPS
        git(bare, "update-server-info")
        self.cert, key = self_signed(bare.parent, address)
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"          # keep-alive: one TLS handshake

            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(bare.parent), **kwargs)

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((address, 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
