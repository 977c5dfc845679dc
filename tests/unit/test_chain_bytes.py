"""The trail's bytes for fixed events: what chain_rows hashes and stores is what it always has, so
chains written before still verify. The expected digests are literals, taken from the chain code
as it was before canonicalisation was made one pass; never recompute them from the code under test."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import asyncpg

from services.audit import domain, merkle
from services.audit.repository import EVENT_COLUMNS, ChainHead, append_many, chain_rows
from tests.audit_events import AT, AT_WHOLE, EVENTS, NONCES, received


def _normalised(text: str) -> str:
    """A JSON column as jsonb keeps it: its values with each number's token as written, key order aside."""
    return json.dumps(json.loads(text, parse_float=str, parse_int=str), sort_keys=True, ensure_ascii=False)


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(
        data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    ).hexdigest()


def _rows() -> tuple[list[tuple[Any, ...]], list[tuple[int, int, bytes]], ChainHead]:
    head = ChainHead(0, domain.GENESIS, [])
    items = [
        (env, AT if n % 3 else AT_WHOLE, NONCES[n], json.dumps(env).encode()) for n, env in enumerate(EVENTS)
    ]
    rows, nodes = chain_rows(head, items)
    return rows, nodes, head


def _summary(row: tuple[Any, ...]) -> tuple[Any, ...]:
    col = {c: row[i] for i, c in enumerate(EVENT_COLUMNS)}
    return (
        col["row_hash"].hex(),
        _digest(_normalised(col["envelope"])),
        _digest(_normalised(col["public_event"])),
        col["agency_id"],
        col["flag"],
        None if col["raw"] is None else _digest(col["raw"]),
    )


# Per row: its hash, its envelope and public view as jsonb keeps them, agency, flag, received bytes.
EXPECTED_ROWS = [
    (
        "d20316f3068cf0c371506d04b811046dbf39839016ec7e5a364d5fca2887d8d6",
        "eac0f2f93ed9013ad015b352ed440933c4dbc3078d573ad2edc71fe63ab231e1",
        "b7d103cdf6ba34f0c3f36420b67f9189d49a2a499dca7e5362213c0abcae65d7",
        None,
        None,
        None,
    ),
    (
        "822e425d4bd3a36ea5f7a714cf33db5e376f8a1545584175924c19b5af729913",
        "b3cf962ab56e8cb6b91bb2b4b390a4e0eda9fe2211a30276dfd61932d60db24c",
        "215541254b7aa84a3a7e1454a8e8ef6ce88241fc26fe74dc8cfec9ae8d8172bc",
        "agency-3",
        None,
        None,
    ),
    (
        "261ea3d2c8b22b180bbf06c84dd81ea772063b2db2bce7529bb0e6482ce2f23d",
        "7437d233b08efe36c1c9dab02700ee593c54868554c3b55ad1c80f1186c97d14",
        "77b703ed6441daa165c8e12763ccf15459683bc746e1f56dede14a8b0d182f0e",
        "agency-3",
        None,
        None,
    ),
    (
        "38e93cb0f7d79106348a0f1ca6183c5624ce568bc655d287b4b1d2bb2f9eb767",
        "151c4ebe6748dc49ed80154e03ab93dcad9d24f42f1fc9a9200fd6bc72aec8fd",
        "6bd18144ba6ced9c60063f5cdd99b53a55cbb4e4dbeb4d2b8380bfd193f75dba",
        "agency-3",
        None,
        None,
    ),
    (
        "433421bfc23bdfcafc0950abdd0e72a94206ed96089bb49f19c16cfcfd172f61",
        "25050cff5e225a47e1339723056eb186a33f30c4fb76531b9f0be59a2dc7114d",
        "68d32b71efc23cc94f2a1369928596656e047f60480e19022d1e9d9caf101c56",
        None,
        None,
        None,
    ),
    (
        "24fe8f035c0a1a720569208b757c063009eec73deeb58c17252ca62d6c89817a",
        "8152c4e49762ce27ddae37298146b142db42edb40ce7af4ed7c001cb1ea74244",
        "8efda8bf67338f10b14fcc533aa1f0e10709bd901729f63fd62db64139a9fcfe",
        None,
        None,
        None,
    ),
    (
        "06f4c598c423fc2484f25d18a2aeb35dcaac802dc93e3f9c7e26695581d82e23",
        "bfb3d7e74892866e0e31621fe53e4735e5d89eeb19c0259222452e55ad6f5c0f",
        "3a7e08201e55a76b9026a2c8635fab7f49f4040d27c927f770ec7822f9cc7503",
        None,
        None,
        None,
    ),
    (
        "ef8d6f1309c8410b3162d2613e5ee12adcd6029487d99360f7881f0e68b4a5c5",
        "2115c25884681cb92a999e41aea0f3547fe7336cf028e873a4dbb858a99987b5",
        "2115c25884681cb92a999e41aea0f3547fe7336cf028e873a4dbb858a99987b5",
        None,
        "not_canonical",
        "fd05f7cb3db0674a061e61b13899f532d208eaaedcc0660962f52ca587b6518a",
    ),
    (
        "3076c371a8ebafcf0596ac558b53a5db99c20b31e5ac0ea2b04be860f3ef26ac",
        "2f97eafa6974e4c2d7565ad800e185098ccff851ffeebd0521a58f5e37a624cd",
        "2f97eafa6974e4c2d7565ad800e185098ccff851ffeebd0521a58f5e37a624cd",
        None,
        "not_canonical",
        "a3210811f28dd68a27670cd1b2f9ebd8a20bc19400a0dc4c22c92b35d61171be",
    ),
    (
        "04876b524b181f8c2a1be7c6b2f2ab9069caf44c4428739caa927c0f08199f2f",
        "a926b0369f51ddb70acd320b2677f796d166f647a5b18c648f997ddd01371be2",
        "a926b0369f51ddb70acd320b2677f796d166f647a5b18c648f997ddd01371be2",
        None,
        "not_canonical",
        "3bfa334e244d59c8778269c16f0da25461bd83bf27453d24da158461daf53d7b",
    ),
    (
        "142deac4652e41161823a24f8d82781677c6a9bf19b3e8ca14acf1a73ea84705",
        "ddae20c6760abce55b607c79ecbc79f4f1189c6b50f27c522e9f33955353257d",
        "9d0781ef9c4f665d602ca7c06fba087ef1cbbf218bdaa5635b0716119e57aa34",
        None,
        None,
        None,
    ),
]
# SHA-256 of each event's canonical bytes (what its seal commits to); None: not canonical.
EXPECTED_CANONICAL = [
    "d7c173ac3a9507e641a64749b080b68620e2fbfc3ab45d731d8c9ad26643bd36",
    "e689b8712957eefa5c8e07e85ef53da2a81783190523ba97e4e1b66f5749ec57",
    "9c8ef99bfa1ac76739b0eb886348477bd3b840004a8350d5727539cff818ec5d",
    "29a3be8b551afe1efc5c379b1bcc0994990a9a880adb79da38630e84cd731b1a",
    "b0e81d1dfd1c90dc13a64f80512030b6a7552538f44b5c1c6084c40cee9a8e4c",
    "7a20a2fb4699fcdd9f60874a45c67d556418ccdb1d6ac3fb804ba01dbf3dd4d5",
    "b91b77d7e27e89e2a3ec37dc83700f148c6f4d77ee4398b3fad85001372a3d9b",
    None,
    "9ddb6792c6574c31018f83b2bf15c0acd01b88c264c7c26758e7a04451a876fc",
    None,
    "93ef3faedd3168c8f34d2be148ce52d1aa50587f2987d858fccd28c6302f9a19",
]
EXPECTED_HEAD = "142deac4652e41161823a24f8d82781677c6a9bf19b3e8ca14acf1a73ea84705"
EXPECTED_TREE_ROOT = "c55e007c12ae35e1992799d467ca4d238945938d908562016ae9140cd6f33067"


def test_each_row_hashes_and_stores_what_the_chain_always_has():
    rows, nodes, head = _rows()
    for n, (row, expected) in enumerate(zip(rows, EXPECTED_ROWS, strict=True)):
        assert _summary(row) == expected, f"row {n + 1}"
    assert [r[EVENT_COLUMNS.index("prev_hash")] for r in rows[1:]] == [
        r[EVENT_COLUMNS.index("row_hash")] for r in rows[:-1]
    ]
    assert (head.seq, head.hash.hex()) == (len(EVENTS), EXPECTED_HEAD)
    assert (merkle.frontier_root(head.frontier).hex(), len(nodes)) == (EXPECTED_TREE_ROOT, 8)


def test_each_event_seals_the_canonical_bytes_it_always_has():
    for n, (envelope, expected) in enumerate(zip(EVENTS, EXPECTED_CANONICAL, strict=True)):
        try:
            got: str | None = _digest(domain.canonical(envelope))
        except domain.NotCanonical:
            got = None
        assert got == expected, f"event {n + 1}"


# The same through append_many, from each event as the consumer parses it (the lone surrogate is
# refused there); also taken from the code before the change.
EXPECTED_RECEIVED = [
    (
        "7b7d38e9e747695647e2d7f2feea6fdde93aa6b06d06ffe01ccf29637e4971c6",
        "0f8a5e98d75ebf38c404b6fcd0acbb64cb9ea72c2bb86a35897e494fba51fa48",
        "7b3d157edc09dea7d49f34d3bec546a5537d3d0ee6b5bbf1f83fc365dfd2e9bc",
        None,
        None,
        None,
    ),
    (
        "880211dcff25ede6d961ad251a1bfe99297b9d2d1828814525c1c63aa73eca13",
        "cb929c25a827aa4ccbbc8fbbd7224aee38dd3c533c17e2ba93ef165e2db85f7d",
        "61b68fe6b927f2da4bde2e5ab91ee042f445035ceba4f2fba9c536a67312dadb",
        "agency-3",
        None,
        None,
    ),
    (
        "a37e2f7934676733061d3b986b75dea7f78469e6fea1d062b9e09411bac9435d",
        "7f1c12e4782bf459dfd5b42446aed775be84a6480d7b5eca3efe885e96e269ca",
        "0d07ccad5b9e1cf747e817478a34c4f080770c21f2fd516305deb99f263665e0",
        "agency-3",
        None,
        None,
    ),
    (
        "489d72c01a38affdce61a3407ca5a68d93ec45673b42f55ca708993af72947fe",
        "5111818e5e5157fd95a55933af8e1836629f49b6ed983944b1c1629a0d66bd58",
        "9c436fac721708eb63d5b19b21f8abf71c0d7ad0b6571fba75e20ae574ca8ce8",
        "agency-3",
        None,
        None,
    ),
    (
        "d9e959777dcd92389d7e060872e543b0b6f132b47f7f16853061f6c95a4d28ef",
        "0768d784e8d69507f2d00e490e5808b2005542379f72387bb4bd9c0377bc8ff4",
        "0894a6faac59cb56ab96d995a01969f8a9b35a25cceee370e6b13661cbb54573",
        None,
        None,
        None,
    ),
    (
        "662f77ac5ea6331ecd6112718984f78679aaa30926786c0fc1612aea99f96c6c",
        "93d89e1869e4e81531a594b2314dc26ef0f18207f152841810ffabfe9c32af4a",
        "f00277dfbee77eff9a56f7401aeccae7f432aeaa90d3040cee9bd73e75b2072a",
        None,
        None,
        None,
    ),
    (
        "e45e0de5e3c1b1e8c3653fa8dd883de09d63ff64dcd5050c3e061bed2fcbcaf2",
        "665681c00a817b6e2bd289553fd1cbfc86b9d90f6e415ab19296c4fd26d92ee5",
        "e9ba2b698f650117eb22dae38476608ec3940f54b3cb7534d971bf9ea1c7fce2",
        None,
        None,
        None,
    ),
    (
        "3ef2c2d81a73b0b48df333fcf3973626e1786ac9eefa610b99e831ea8447ab0e",
        "6ef2d720eb38d5c7a8e1ab619bd3558b559ead29b4f413a40213c88105895c2f",
        "6ef2d720eb38d5c7a8e1ab619bd3558b559ead29b4f413a40213c88105895c2f",
        None,
        "not_canonical",
        "5fe6c1e97ebf7d302f1419749bcf3f51d15c73c1a7cd63b0b7ee4cbf857a98c3",
    ),
    (
        "e0e3bee2bb5f14cc13cbdbc57db3cce993aaab9ca042a029f751c8480f84099b",
        "77bd99e230b1419ea136bf8e3b91ef34b46845d138e3766e4790d82087519c82",
        "77bd99e230b1419ea136bf8e3b91ef34b46845d138e3766e4790d82087519c82",
        None,
        "not_canonical",
        "3739e4139ff7c1c9fda6b9ac661a405b8384eb42ac9f376f1af0c8845d57ad1e",
    ),
    (
        "7c5a023e0d9d0cbcdd42a7c5aafeca8e4011fbf48f70ee7e330efb27d9b1b492",
        "7ea385d218621690800a08054fa5e885644c22dffa8c36ff1de786fbe3f670ea",
        "73082411ba6be215fec4f8f7dc1162dbbd14a2aeed1a0c742036ff453686892a",
        None,
        None,
        None,
    ),
]


class _Recorder:
    """The statements append_many sends, on an empty trail: its rows as they would be inserted."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    async def fetchrow(self, sql: str) -> dict[str, Any]:
        return {"seq": 0, "hash": domain.GENESIS, "frontier": []}

    async def execute(self, sql: str, *args: Any) -> None:
        if sql.startswith("INSERT INTO audit.events"):
            self.rows.extend(zip(*args, strict=True))  # one array per column


async def test_events_as_received_are_chained_as_they_always_were():
    parsed = [(event, NONCES[n]) for n, e in enumerate(EVENTS) if (event := received(e)) is not None]
    conn = _Recorder()
    flagged = await append_many(cast(asyncpg.Connection, conn), parsed, AT)
    assert [_summary(row) for row in conn.rows] == EXPECTED_RECEIVED
    assert flagged == [str(event.id) for event, _ in parsed if str(event.id).endswith(("8", "9"))]
