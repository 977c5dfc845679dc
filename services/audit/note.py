"""C2SP signed notes and tlog checkpoints with Ed25519: sign, name the key, open and check. Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"
DASH = "\u2014"


class NoteError(ValueError):
    """A note or checkpoint that must not be trusted; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and its RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The checkpoint's note text (origin, size, base64 root, each ending in a newline)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public: bytes) -> bytes:
    """SHA-256(key name || 0x0A || 0x01 || public key)[:4], per the signed-note spec."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A public key with its name, as an oversight body keeps it."""

    name: str
    public: bytes

    def encode(self) -> str:
        """`<name>+<hex key id>+<base64(0x01 || public key)>` (the Go note verifier key format)."""
        kid = key_id(self.name, self.public).hex()
        return f"{self.name}+{kid}+{base64.b64encode(ED25519 + self.public).decode()}"

    @classmethod
    def decode(cls, text: str) -> VerifierKey:
        """Parse the encoded form; NoteError when it is not one."""
        name, _, rest = text.strip().partition("+")
        kid_hex, _, key_b64 = rest.partition("+")
        try:
            raw = base64.b64decode(key_b64, validate=True)
            kid = bytes.fromhex(kid_hex)
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"not a verifier key: {exc}") from exc
        if not name or len(raw) != 33 or raw[:1] != ED25519 or key_id(name, raw[1:]) != kid:
            raise NoteError("not an Ed25519 verifier key (name, key id or key does not match)")
        return cls(name, raw[1:])


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 signing key."""

    name: str
    key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        """The signer of a 32-byte Ed25519 seed."""
        if not name or any(c.isspace() or c == "+" for c in name):
            raise NoteError("a key name must be non-empty, without spaces or '+'")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    def verifier(self) -> VerifierKey:
        """The public half, to hand to oversight bodies."""
        return VerifierKey(self.name, _raw(self.key.public_key()))

    def sign(self, text: str) -> str:
        """A signed note of `text` (which must end in a newline) with one signature line."""
        sig = key_id(self.name, _raw(self.key.public_key())) + self.key.sign(text.encode())
        return f"{text}\n{DASH} {self.name} {base64.b64encode(sig).decode()}\n"


def open_note(note: str, key: VerifierKey) -> str:
    """The text of a note signed by `key`; NoteError if no signature by it verifies."""
    if "\n\n" not in note or not note.endswith("\n"):
        raise NoteError("not a signed note (no blank line before the signatures)")
    cut = note.rindex("\n\n")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    kid = key_id(key.name, key.public)
    verified = False
    for line in lines:
        prefix, _, rest = line.partition(" ")
        name, _, sig_b64 = rest.partition(" ")
        if prefix != DASH or not name or not sig_b64:
            raise NoteError("malformed signature line")
        try:
            sig = base64.b64decode(sig_b64, validate=True)
        except binascii.Error as exc:
            raise NoteError("signature is not base64") from exc
        if name != key.name or sig[:4] != kid:
            continue  # another key's signature (a witness, a rotated key): ignored, as the spec says
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(sig[4:], text.encode())
        except InvalidSignature as exc:
            raise NoteError("the signature by the trusted key does not verify") from exc
        verified = True
    if not verified:
        raise NoteError("no signature by the trusted key")
    return text


def open_checkpoint(note: str, key: VerifierKey) -> Checkpoint:
    """The checkpoint in a note signed by `key`, its origin equal to the key name; else NoteError."""
    lines = open_note(note, key).split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a size and a root hash")
    origin, size, root_b64 = lines[:3]
    if origin != key.name:
        raise NoteError(f"checkpoint origin {origin!r} is not the log {key.name!r}")
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError("tree size is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error as exc:
        raise NoteError("root hash is not base64") from exc
    if len(root) != 32:
        raise NoteError("root hash is not 32 bytes")
    return Checkpoint(origin, int(size), root)
