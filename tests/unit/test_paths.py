"""Path and name rules: what a client may call a file, a workspace or a lease."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memhub.core.paths import (
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    WINDOWS_DEVICES,
    normalize_path,
    normalize_prefix,
    validate_name,
)
from memhub.errors import InvalidPath

ALLOWED_FORMAT_CHARS = {"\u200c", "\u200d"}  # ZWNJ and ZWJ: needed to spell some words

# Text that often looks like a path: separators, dots, backslashes, control
# characters and combining marks mixed with letters from several scripts.
path_like = st.lists(
    st.sampled_from(
        [
            *["/", "/", ".", "..", "\\", "\x00", "\n", "\t", "\u200b", "\u200d", "\u0301"],
            *[
                "a",
                "b",
                "Z",
                "0",
                " ",
                "-",
                "_",
                "я",
                "ї",
                "ґ",
                "中",
                "文",
                "e",
                "\u00e9",
                "😀",
                "ﬁ",
            ],
        ]
    ),
    max_size=30,
).map("".join)

segment = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"),
            blacklist_characters='/\\<>:"|?*',
        ),
        min_size=1,
        max_size=12,
    )
    .map(lambda s: s + "x")  # never ending in '.' or ' '
    .filter(lambda s: s.split(".", 1)[0].rstrip(" ").lower() not in WINDOWS_DEVICES)
)
valid_path = st.lists(segment, min_size=1, max_size=6).map("/".join)


def check_canonical(path: str) -> None:
    assert path == unicodedata.normalize("NFC", path)
    assert not path.startswith("/")
    assert "\\" not in path
    for ch in path:
        category = unicodedata.category(ch)
        assert category not in ("Cc", "Cs", "Zl", "Zp"), repr(path)
        assert ch not in '<>:"|?*', repr(path)
        assert category != "Cf" or ch in ALLOWED_FORMAT_CHARS, repr(path)
    segments = path.split("/")
    assert all(s not in ("", ".", "..") for s in segments), repr(path)
    assert not any(s.endswith((".", " ")) for s in segments), repr(path)
    assert all(len(s.encode()) <= MAX_SEGMENT_BYTES for s in segments)
    assert len(path.encode()) <= MAX_PATH_BYTES


# No deadline: a loaded CI machine must not turn a slow example into a failure.
@settings(deadline=None)
@given(st.one_of(path_like, st.text(max_size=40)))
@example("a/./b")
@example("a/../b")
@example("e\u0301/.\u0301")  # a combining mark after '.' is a name, not '.'
def test_an_accepted_path_comes_out_canonical_and_stable(raw: str) -> None:
    try:
        path = normalize_path(raw)
    except InvalidPath:
        return
    check_canonical(path)
    assert normalize_path(path) == path


@settings(deadline=None)
@given(valid_path)
def test_every_path_of_valid_segments_is_accepted_in_nfc(raw: str) -> None:
    path = normalize_path(raw)

    assert path == unicodedata.normalize("NFC", raw)
    assert normalize_path(unicodedata.normalize("NFD", raw)) == path
    assert normalize_path(unicodedata.normalize("NFC", raw)) == path


@settings(deadline=None)
@given(
    st.lists(segment, min_size=0, max_size=4),
    st.lists(segment, max_size=4),
    st.sampled_from([".", ".."]),
)
def test_a_dot_segment_anywhere_is_rejected(before: list[str], after: list[str], dots: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_path("/".join([*before, dots, *after]))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "..",
        "a/../b",
        "../a",
        "a/..",
        "./a",
        "a/./b",
        "a//b",
        "/abs",
        "/",
        "a\\b",
        "..\\..\\etc",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\x7fb",
        "a\u200bb",  # zero-width space: invisible, so two names would look the same
        "a\u202eb",  # right-to-left override: makes a name display as another
        "dir/",
        "x" * (MAX_SEGMENT_BYTES + 1),
        "я" * 128,  # 256 bytes in UTF-8, though only 128 characters
        "/".join(["x" * 200] * 5 + ["y" * 20]),  # 1025 bytes
        "a\udc80b",  # a lone surrogate: not encodable as UTF-8
    ],
)
def test_invalid_paths_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPath) as failure:
        normalize_path(raw)
    assert failure.value.status == 400
    assert failure.value.code == "INVALID_PATH"


@pytest.mark.parametrize(
    "raw",
    [
        "notes.md",
        "Нотатки/щоденник.md",
        "Ґанок/їжак та єнот.txt",
        "日本語/文件 名.md",
        "한국어.txt",
        "with spaces/and more spaces.md",
        ".hidden",
        "a.b.c",
        "a..b",
        "dir.d/file.tar.gz",
        "emoji 😀/👩\u200d💻.md",  # ZWJ sequences are allowed
        "x" * MAX_SEGMENT_BYTES,
        "я" * 127,
        "/".join(["x" * 200] * 5 + ["y" * 19]),  # exactly 1024 bytes
    ],
)
def test_ordinary_names_in_any_script_are_accepted_unchanged(raw: str) -> None:
    assert normalize_path(raw) == raw


def test_nfd_input_is_stored_as_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "café/Їжак.md")
    assert nfd != "café/Їжак.md"

    assert normalize_path(nfd) == "café/Їжак.md"


# -- listing prefixes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("notes", "notes"),
        ("notes/", "notes/"),
        ("notes/2024/", "notes/2024/"),
        ("Нотатки/", "Нотатки/"),
        (unicodedata.normalize("NFD", "café/"), "café/"),
    ],
)
def test_normalize_prefix(raw: str | None, expected: str) -> None:
    assert normalize_prefix(raw) == expected


@pytest.mark.parametrize("raw", ["../", "a/../", "/abs/", "a//b/", "a\\b/", "a\x00/"])
def test_an_invalid_prefix_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_prefix(raw)


# -- workspace and lease names ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["default", "team-a", "user_42", "agent:claude", "me@example.com", "v1.2", "проєкт", "x" * 64],
)
def test_valid_names_are_accepted(raw: str) -> None:
    assert validate_name(raw) == raw


def test_a_name_is_returned_in_nfc() -> None:
    assert validate_name(unicodedata.normalize("NFD", "café")) == "café"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "..",
        "a/b",
        "a\\b",
        "with space",
        "tab\there",
        "new\nline",
        "semi;colon",
        "x" * (MAX_NAME_BYTES + 1),
        "я" * 33,  # 66 bytes
    ],
)
def test_invalid_names_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPath) as failure:
        validate_name(raw, "workspace")
    assert "workspace" in failure.value.detail


@pytest.mark.parametrize(
    "raw",
    [
        "CON",
        "con",
        "notes/nul.txt",
        "Aux.tar.gz",
        "com1",
        "LPT9.md",
        "a:b",
        "a*b",
        "what?.md",
        "<x>",
        'say "hi"',
        "a|b",
        "trailing.",
        "...",
        "trailing /x",
        "dir./x",
        "line\u2028sep",
        "para\u2029sep",
        "next\u0085line",
    ],
)
def test_names_a_client_cannot_hold_are_refused(raw: str) -> None:
    """Issue 8 item 10: names Windows/macOS folder sync could not write."""
    with pytest.raises(InvalidPath):
        normalize_path(raw)


@pytest.mark.parametrize("raw", ["console.md", "nullable/x", "com10", "a.b.c", "con-x.md"])
def test_names_near_the_reserved_ones_are_fine(raw: str) -> None:
    assert normalize_path(raw) == raw
