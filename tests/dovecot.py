"""A private Dovecot for the IMAP tests: its own config, users and maildirs in a temporary
directory, listening on a free port of 127.0.0.1, started as root in the foreground.

Outside CI a missing Dovecot skips the tests that need it; under ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from imapclient import IMAPClient

DOVECOT = Path("/usr/sbin/dovecot")
PASSWORD = "secret"
USERS = 200  # per instance
# Dovecot 2.3's post-login list, without MOVE (imap_capability replaces the whole list)
NO_MOVE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY LITERAL+"
)

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailticket-test-{instance}
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# a refused login is answered at once and does not slow down later logins from 127.0.0.1
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
{capability}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
"""


def require_dovecot() -> None:
    """Skip (or, under CI, fail) with a clear reason when Dovecot cannot run here."""
    problem = None
    if not DOVECOT.exists():
        problem = f"{DOVECOT} not found (apt-get install dovecot-imapd)"
    elif os.geteuid() != 0:
        problem = "Dovecot is started as root by the tests; run them as root"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Dovecot is required in CI: {problem}")
    pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Dovecot:
    """One running instance; ``new_user()`` gives each test a mailbox of its own."""

    host = "127.0.0.1"

    def __init__(self, root: Path, *, capability: str | None = None, tls: bool = False) -> None:
        self.root = root
        self.port = free_port()
        self.tls_port = free_port() if tls else 0  # implicit TLS ("imaps")
        self.cert = root / "cert.pem" if tls else None
        nobody = pwd.getpwnam("nobody")
        home = root / "home"
        home.mkdir(parents=True)
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        # passwd-file is reread when its mtime changes, in whole seconds: users made
        # within one second would go unseen, so a pool is written up front
        self._users = [f"u{n:03d}{uuid.uuid4().hex[:6]}" for n in range(USERS)]
        (root / "passwd").write_text(
            "".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in self._users)
        )
        if tls:
            _self_signed(root)
        config = CONFIG.format(
            root=root,
            instance=uuid.uuid4().hex[:8],
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
            internal=_user("dovecot"),
            login=_user("dovenull"),
            port=self.port,
            tls_port=self.tls_port,
            capability=f"imap_capability = {capability}" if capability else "",
            ssl=(
                f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"
                if tls
                else "ssl = no"
            ),
        )
        self.config = root / "dovecot.conf"
        self.config.write_text(config)
        self._process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited: {error.strip()} {self.log()}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        if self._process.stderr:
            self._process.stderr.close()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def new_user(self) -> str:
        """A user no test has used yet: an empty mailbox of its own."""
        return self._users.pop()

    @contextmanager
    def client(self, user: str, folder: str | None = "INBOX") -> Iterator[IMAPClient]:
        """A logged-in client of our own, to look into the mailbox as a user would."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        try:
            client.login(user, PASSWORD)
            if folder:
                client.select_folder(folder)
            yield client
        finally:
            client.logout()

    def append(self, user: str, mails: Iterable[bytes], folder: str = "INBOX") -> None:
        """Deliver with IMAP APPEND (MULTIAPPEND in chunks), as any MTA-side agent would."""
        with self.client(user, folder=None) as client:
            chunk: list[bytes] = []
            for raw in mails:
                chunk.append(raw)
                if len(chunk) == 500:
                    client.multiappend(folder, chunk)
                    chunk = []
            if chunk:
                client.multiappend(folder, chunk)

    def contents(self, user: str, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        """UID -> flags (without the session-bound ``\\Recent``) of every mail in ``folder``
        (``{}`` when it does not exist)."""
        with self.client(user, folder=None) as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            flags = client.get_flags(client.search("ALL"))
            return {uid: tuple(f for f in fs if f != b"\\Recent") for uid, fs in flags.items()}


def _user(name: str) -> str:
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        return "nobody"


def _self_signed(root: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(root / "key.pem"),
            "-out",
            str(root / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )


@contextmanager
def running_dovecot(*, capability: str | None = None, tls: bool = False) -> Iterator[Dovecot]:
    """A Dovecot for the duration of the block, in a directory the mail user can reach."""
    require_dovecot()
    root = Path(tempfile.mkdtemp(prefix="mailticket-dovecot-"))
    root.chmod(0o755)  # pytest's tmp_path is 0700: the mail user could not reach its home
    server = Dovecot(root, capability=capability, tls=tls)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
