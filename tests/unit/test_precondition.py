"""``Precondition.check``: every kind of precondition against every state of a path
(absent, live, deleted). A tombstone counts as "nothing there"."""

from __future__ import annotations

import hashlib

import pytest

from memhub.errors import PreconditionFailed
from memhub.store import Precondition, Revision

LIVE_BYTES = b"the live content"
MD5 = hashlib.md5(LIVE_BYTES).hexdigest()
SHA = hashlib.sha256(LIVE_BYTES).hexdigest()
OTHER_MD5 = hashlib.md5(b"other").hexdigest()
OTHER_SHA = hashlib.sha256(b"other").hexdigest()


def revision(*, deleted: bool) -> Revision:
    return Revision(
        workspace="ws",
        rev=5,
        path="a.md",
        sha256=SHA,
        md5=MD5,
        size=0 if deleted else len(LIVE_BYTES),
        content_type="text/markdown",
        created_at=1_700_000_000.0,
        author=None,
        session_id=None,
        message=None,
        deleted=deleted,
    )


STATES = {"absent": None, "live": revision(deleted=False), "deleted": revision(deleted=True)}
OK, FAIL = True, False

# precondition → outcome when the path is (absent, live, deleted)
TRUTH_TABLE = [
    (Precondition(), (OK, OK, OK)),
    (Precondition.none(), (OK, OK, OK)),
    (Precondition(exists=True), (FAIL, OK, FAIL)),
    (Precondition(exists=False), (OK, FAIL, OK)),
    (Precondition(sha256=SHA), (FAIL, OK, FAIL)),
    (Precondition(sha256=OTHER_SHA), (FAIL, FAIL, FAIL)),
    (Precondition(md5=MD5), (FAIL, OK, FAIL)),
    (Precondition(md5=OTHER_MD5), (FAIL, FAIL, FAIL)),
    (Precondition(rev=5), (FAIL, OK, FAIL)),
    (Precondition(rev=4), (FAIL, FAIL, FAIL)),
    (Precondition(exists=True, md5=MD5), (FAIL, OK, FAIL)),
    (Precondition(exists=True, md5=OTHER_MD5), (FAIL, FAIL, FAIL)),
    (Precondition(sha256=SHA, md5=MD5, rev=5), (FAIL, OK, FAIL)),
    (Precondition(sha256=SHA, md5=OTHER_MD5), (FAIL, FAIL, FAIL)),
    (Precondition(sha256=OTHER_SHA, md5=MD5), (FAIL, FAIL, FAIL)),
    (Precondition(md5=MD5, rev=4), (FAIL, FAIL, FAIL)),
    (Precondition(exists=False, md5=MD5), (FAIL, FAIL, FAIL)),  # contradictory: never true
]


def describe(precondition: Precondition) -> str:
    names = {SHA: "live", MD5: "live", OTHER_SHA: "other", OTHER_MD5: "other"}
    fields = {
        "exists": precondition.exists,
        "sha256": names.get(precondition.sha256 or "", precondition.sha256),
        "md5": names.get(precondition.md5 or "", precondition.md5),
        "rev": precondition.rev,
    }
    return (
        ",".join(f"{key}={value}" for key, value in fields.items() if value is not None) or "none"
    )


CASES = [
    pytest.param(precondition, state, outcome, id=f"{describe(precondition)}-{state}")
    for precondition, outcomes in TRUTH_TABLE
    for state, outcome in zip(STATES, outcomes, strict=True)
]


@pytest.mark.parametrize(("precondition", "state", "passes"), CASES)
def test_check(precondition: Precondition, state: str, passes: bool) -> None:
    current = STATES[state]
    if passes:
        precondition.check("a.md", current)
    else:
        with pytest.raises(PreconditionFailed) as failure:
            precondition.check("a.md", current)
        assert failure.value.status == 412
        assert failure.value.context is not None
        assert failure.value.context["path"] == "a.md"


def test_a_failure_on_a_live_path_tells_the_client_its_current_hashes() -> None:
    with pytest.raises(PreconditionFailed) as failure:
        Precondition(exists=False).check("a.md", STATES["live"])
    assert failure.value.context == {"path": "a.md", "current_md5": MD5, "current_sha256": SHA}

    with pytest.raises(PreconditionFailed) as failure:
        Precondition(md5=OTHER_MD5).check("a.md", STATES["live"])
    assert failure.value.context is not None
    assert failure.value.context["current_md5"] == MD5


@pytest.mark.parametrize("state", ["absent", "deleted"])
@pytest.mark.parametrize(
    "precondition",
    [Precondition(md5=""), Precondition(sha256="")],
    ids=["md5-empty", "sha256-empty"],
)
def test_an_empty_hash_still_requires_the_path_to_exist(
    precondition: Precondition, state: str
) -> None:
    """A hash precondition (``Content-MD5: `` or ``If-Match: ""`` sent empty) can only
    hold for a live file: on a live file the empty hash fails as a mismatch, so on a
    missing one it must fail too instead of letting the write create the file."""
    with pytest.raises(PreconditionFailed):
        precondition.check("a.md", STATES[state])
    with pytest.raises(PreconditionFailed):
        precondition.check("a.md", STATES["live"])
