"""Signed checkpoints of the chain head, kept outside the main database.

A checkpoint is ``{"v": 1, "seq": N, "link_hash": h, "signed_at": iso, "key_id": k}`` signed with
Ed25519 (``settings.AUDIT_SIGNING_KEY`` is the 32-byte seed). A writer with database access who rewrites
records and recomputes the whole chain cannot produce a signature for the new head, and cannot reach
the checkpoint store (ideally WORM storage or another host), so verification catches the rewrite.

Stores are pluggable: ``settings.AUDIT_CHECKPOINT_STORE`` names a class with ``write(signed)``,
``read_all()`` and ``describe()``; the default ``DirectoryStore`` keeps one JSON file per checkpoint in
``settings.AUDIT_CHECKPOINT_DIR``, written atomically and never overwritten.

Besides the permanent checkpoints, the store keeps the **signed head**: the same signed statement for the
newest link, re-signed within ``AUDIT_HEAD_SIGN_SECONDS`` of every write (``audit.services.chain_head_sign``)
and kept in one slot that each signature replaces (``write_head``/``read_head``; ``head.json`` in the
directory store). It closes the window between permanent checkpoints: a truncation or recomputation of
records sealed before the last head signature contradicts it. A store without a head slot gets head
signatures as ordinary checkpoints (``head_write``/``head_read`` below).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.utils.module_loading import import_string

FORMAT_VERSION = 1


class CheckpointStoreError(Exception):
    """The checkpoint store refused a write (e.g. a different checkpoint already exists at that seq)."""


@dataclass(frozen=True)
class SignedCheckpoint:
    seq: int
    link_hash: str
    signed_at: str
    key_id: str
    signature: str  # base64 Ed25519 signature over payload_bytes()
    name: str = ""  # where the store keeps it (file name)

    def payload(self) -> dict[str, Any]:
        return {"v": FORMAT_VERSION, "seq": self.seq, "link_hash": self.link_hash, "signed_at": self.signed_at,
                "key_id": self.key_id}

    def payload_bytes(self) -> bytes:
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":")).encode("ascii")

    def to_json(self) -> str:
        return json.dumps({"payload": self.payload(), "signature": self.signature}, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str, *, name: str = "") -> SignedCheckpoint:
        data = json.loads(text)
        payload = data["payload"]
        if payload.get("v") != FORMAT_VERSION:
            raise ValueError("unknown checkpoint format")
        return cls(seq=int(payload["seq"]), link_hash=str(payload["link_hash"]), signed_at=str(payload["signed_at"]),
                   key_id=str(payload["key_id"]), signature=str(data["signature"]), name=name)


# ------------------------------------------------------------------------------------------- keys

def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_public_raw(public_key)).hexdigest()[:16]


def signing_key() -> Ed25519PrivateKey:
    seed = settings.AUDIT_SIGNING_KEY
    if not isinstance(seed, bytes | bytearray) or len(seed) != 32:
        raise ValueError("AUDIT_SIGNING_KEY must be a 32-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def verify_keys() -> dict[str, Ed25519PublicKey]:
    """Public keys accepted for checkpoint signatures, by key id: every key in
    ``AUDIT_VERIFY_PUBLIC_KEY`` (comma-separated base64 raw keys; lets a verifier work without the
    private key, and keeps retired keys valid), plus the key derived from ``AUDIT_SIGNING_KEY`` if set."""
    keys: dict[str, Ed25519PublicKey] = {}
    configured = getattr(settings, "AUDIT_VERIFY_PUBLIC_KEY", "") or ""
    for item in filter(None, (part.strip() for part in str(configured).split(","))):
        public = Ed25519PublicKey.from_public_bytes(_b64decode(item))
        keys[key_id_of(public)] = public
    if getattr(settings, "AUDIT_SIGNING_KEY", None):
        public = signing_key().public_key()
        keys.setdefault(key_id_of(public), public)
    return keys


def public_key_b64() -> str:
    return base64.urlsafe_b64encode(_public_raw(signing_key().public_key())).decode().rstrip("=")


def sign(*, seq: int, link_hash: str, signed_at: str) -> SignedCheckpoint:
    private = signing_key()
    unsigned = SignedCheckpoint(seq=seq, link_hash=link_hash, signed_at=signed_at,
                                key_id=key_id_of(private.public_key()), signature="")
    signature = base64.b64encode(private.sign(unsigned.payload_bytes())).decode()
    return SignedCheckpoint(seq=seq, link_hash=link_hash, signed_at=signed_at, key_id=unsigned.key_id,
                            signature=signature)


def signature_valid(checkpoint: SignedCheckpoint, keys: dict[str, Ed25519PublicKey] | None = None) -> bool:
    keys = verify_keys() if keys is None else keys
    public = keys.get(checkpoint.key_id)
    if public is None:
        return False
    try:
        public.verify(base64.b64decode(checkpoint.signature), checkpoint.payload_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------------------- stores

class CheckpointStore(Protocol):
    def write(self, checkpoint: SignedCheckpoint) -> str: ...

    def read_all(self) -> list[SignedCheckpoint]: ...

    def describe(self) -> str: ...


class DirectoryStore:
    """One JSON file per checkpoint (``checkpoint-<seq>.json``) in ``AUDIT_CHECKPOINT_DIR``.

    Writes go to a temporary file in the same directory, are fsynced, then hard-linked into place, which
    is atomic and fails if the name exists: a checkpoint file is never overwritten. Point the directory
    at storage the application's database credentials cannot reach (a WORM bucket mount, another host).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory or settings.AUDIT_CHECKPOINT_DIR)

    def describe(self) -> str:
        return f"directory {self.directory}"

    @staticmethod
    def file_name(seq: int) -> str:
        return f"checkpoint-{seq:012d}.json"

    def write(self, checkpoint: SignedCheckpoint) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = self.file_name(checkpoint.seq)
        final = self.directory / name
        text = checkpoint.to_json()
        fd, tmp = tempfile.mkstemp(prefix=".tmp-checkpoint-", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError as exc:
                if final.read_text(encoding="ascii") != text:
                    raise CheckpointStoreError(f"a different checkpoint exists for seq {checkpoint.seq}") from exc
        finally:
            os.unlink(tmp)
        self._fsync_dir()
        return name

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:  # pragma: no cover - platforms without directory fds
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    HEAD_NAME = "head.json"

    def write_head(self, checkpoint: SignedCheckpoint) -> str:
        """Replace the signed head (temporary file, fsync, atomic rename). The caller holds the chain-head
        lock and never replaces a head with an older one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-head-", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(checkpoint.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / self.HEAD_NAME)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._fsync_dir()
        return self.HEAD_NAME

    def read_head(self) -> SignedCheckpoint | None:
        path = self.directory / self.HEAD_NAME
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            text = ""
        try:
            return SignedCheckpoint.from_json(text, name=self.HEAD_NAME)
        except (ValueError, KeyError, TypeError):
            # An unreadable head counts as a forged one (verification reports its signature as invalid).
            return SignedCheckpoint(seq=-1, link_hash="", signed_at="", key_id="", signature="", name=self.HEAD_NAME)

    def read_all(self) -> list[SignedCheckpoint]:
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("checkpoint-*.json")):
            try:
                out.append(SignedCheckpoint.from_json(path.read_text(encoding="ascii"), name=path.name))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                # An unreadable checkpoint counts as a forged one: keep it with an empty signature.
                seq = int(path.stem.rsplit("-", 1)[-1]) if path.stem.rsplit("-", 1)[-1].isdigit() else -1
                out.append(SignedCheckpoint(seq=seq, link_hash="", signed_at="", key_id="", signature="",
                                            name=path.name))
        return sorted(out, key=lambda c: (c.seq, c.name))


def head_write(store: CheckpointStore, checkpoint: SignedCheckpoint) -> str:
    """Store a head signature: in the store's head slot, or as an ordinary checkpoint when it has none."""
    writer = getattr(store, "write_head", None)
    return str(writer(checkpoint)) if writer is not None else store.write(checkpoint)


def head_read(store: CheckpointStore) -> SignedCheckpoint | None:
    """The newest head signature (None when the store has no head slot or nothing was signed yet)."""
    reader = getattr(store, "read_head", None)
    return reader() if reader is not None else None


def checkpoint_store() -> CheckpointStore:
    path = getattr(settings, "AUDIT_CHECKPOINT_STORE", "") or "audit.checkpoints.DirectoryStore"
    store_class = import_string(path)
    return store_class()
