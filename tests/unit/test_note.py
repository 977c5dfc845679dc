"""C2SP signed-note checkpoints: what we sign opens with our key, and nothing else does."""

from __future__ import annotations

import base64

import pytest

from services.audit.note import Checkpoint, NoteError, Signer, VerifierKey, key_id, open_checkpoint

SIGNER = Signer.from_seed("example.org/audit", bytes(range(32)))
HEAD = Checkpoint("example.org/audit", 12, bytes(32))


def test_a_signed_checkpoint_has_the_c2sp_shape_and_opens():
    note = SIGNER.sign(HEAD.text())
    text, _, sig_line = note.partition("\n\n")
    assert text.split("\n") == ["example.org/audit", "12", base64.b64encode(bytes(32)).decode()]
    dash, name, sig = sig_line.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", "example.org/audit")
    raw = base64.b64decode(sig)
    assert len(raw) == 4 + 64 and raw[:4] == key_id(name, SIGNER.verifier().public)
    assert open_checkpoint(note, SIGNER.verifier()) == HEAD


def test_the_verifier_key_round_trips_through_its_text_form():
    key = SIGNER.verifier()
    assert VerifierKey.decode(key.encode()) == key
    with pytest.raises(NoteError):
        VerifierKey.decode(key.encode().replace("+", "+0", 1))


def test_a_changed_size_or_root_no_longer_opens():
    note = SIGNER.sign(HEAD.text())
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(note.replace("\n12\n", "\n13\n"), SIGNER.verifier())


def test_another_key_with_the_same_name_is_ignored_and_then_nothing_verifies():
    impostor = Signer.from_seed("example.org/audit", bytes(32))
    with pytest.raises(NoteError, match="no signature by the trusted key"):
        open_checkpoint(impostor.sign(HEAD.text()), SIGNER.verifier())


def test_a_cosignature_by_an_unknown_key_is_ignored():
    note = SIGNER.sign(HEAD.text())
    witness = Signer.from_seed("witness.example", bytes([7] * 32)).sign(HEAD.text())
    both = note + witness.partition("\n\n")[2]
    assert open_checkpoint(both, SIGNER.verifier()) == HEAD


@pytest.mark.parametrize("bad", ["", "no blank line\n", "a\n\nnot a signature line\n"])
def test_malformed_notes_are_refused(bad):
    with pytest.raises(NoteError):
        open_checkpoint(bad, SIGNER.verifier())
