"""Real protocol peers for the notifier's channels, started by the tests on free ports.

- :class:`HttpPeer`: an HTTP server (uvicorn) standing in for the Telegram Bot API and for a
  webhook receiver. It records every request and answers as told: an outage is a status (503,
  429 with a Retry-After) or the server stopped (connection refused).
- :class:`SmtpPeer`: aiosmtpd, speaking STARTTLS or TLS with a certificate of a test CA, and
  requiring a login.
"""

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response

from ordo.kit.embedded import free_port
from ordo.kit.http import HttpServer
from ordo.kit.testing import eventually

# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, bytes]:
        """A multipart/form-data body, field name → content (the stdlib parses it)."""
        head = f"Content-Type: {self.content_type}\r\n\r\n".encode()
        message = email.message_from_bytes(head + self.body, policy=email.policy.HTTP)
        return {
            str(part.get_param("name", header="content-disposition")): part.get_payload(decode=True)
            for part in message.iter_parts()
        }


@dataclass
class Answer:
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"ok": True, "result": {}})
    headers: dict[str, str] = field(default_factory=dict)


class HttpPeer:
    """Records every POST; answers ``answer`` (set it to inject an outage)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: list[Received] = []  # requests answered with anything but 2xx
        self.answer = Answer()
        self.port = free_port()
        self._server: HttpServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def record(path: str, request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            seen = Received(f"/{path}", content_type, await request.body())
            answer = self.answer
            (self.received if answer.status < 300 else self.refused).append(seen)
            return Response(
                json.dumps(answer.body),
                status_code=answer.status,
                headers=answer.headers,
                media_type="application/json",
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = HttpServer(self.app, "127.0.0.1", self.port)
        self._task = asyncio.create_task(self._server.serve())

        async def listening() -> bool:
            return self._server is not None and self._server.started

        await eventually(listening, what="the HTTP peer listening")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            await self._server.stop()
            await self._task
            self._server = self._task = None


@asynccontextmanager
async def http_peer() -> AsyncIterator[HttpPeer]:
    peer = HttpPeer()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


# -- TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path) -> Certificates:
    """A CA and a certificate it signs for 127.0.0.1 and localhost, as strict clients want."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ordo test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# -- SMTP ---------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server accepted; ``defer`` makes it answer 451 (try later) instead."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    defer: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.defer:
            return "451 4.3.0 mailbox busy, try later"
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 2.0.0 accepted"


@dataclass(frozen=True)
class SmtpPeer:
    port: int
    mailbox: Mailbox
    starttls: bool  # False: TLS from the first byte


USER, PASSWORD = "ordo@example.com", "s3cret-smtp-password"


@contextmanager
def smtp_peer(certificates: Certificates, *, starttls: bool = True) -> Iterator[SmtpPeer]:
    """aiosmtpd on a free port, in its own thread, requiring TLS and a login."""
    mailbox = Mailbox()

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == USER
            and data.password.decode() == PASSWORD
        )
        if ok:
            mailbox.logins.append(data.login.decode())
        # Not handled here: aiosmtpd answers a failure with its 535 itself.
        return AuthResult(success=ok, handled=False)

    port = free_port()
    tls = certificates.server_context()
    options: dict[str, Any] = {"authenticator": authenticate, "auth_required": True}
    if starttls:
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls,
            require_starttls=True,
            **options,
        )
    else:
        # aiosmtpd cannot tell that a connection wrapped from its first byte is TLS: it would
        # hide AUTH (which it offers only under TLS) unless told that it is.
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=tls,
            auth_require_tls=False,
            **options,
        )
    controller.start()
    try:
        yield SmtpPeer(port, mailbox, starttls)
    finally:
        controller.stop()
