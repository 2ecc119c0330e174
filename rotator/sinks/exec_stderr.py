"""What an exec-sink program prints on standard error, blanked of secrets before it is logged.

The exec sink (``rotator.sinks.exec``) hands this module the bytes a call printed, the secrets
the sink wrote itself and the SHA-256 of every secret it met; :func:`blank_and_cut` returns the
text to log. The rule, and what it cannot catch, is in that function's docstring. This module
knows nothing of programs, calls or logging: it turns bytes into safe text, within a bounded
amount of work whatever it is given.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Collection, Sequence
from typing import Final

#: Standard error logged per call, in characters, after secrets are blanked.
MAX_STDERR_CHARS: Final = 1000
#: What replaces a line of standard error that holds (a piece of) a secret the sink wrote, and a
#: token whose SHA-256 is one the sink knows.
BLANKED: Final = "**********"
#: The shortest run of a written secret's characters that blanks a line holding it.
MIN_SECRET_PIECE: Final = 8
#: What ends standard error that could not be checked within the budget below; the rest of it
#: is not logged.
NOT_CHECKED: Final = "[the rest was not checked for secrets and is not logged]"

# Candidate tokens hashed per call at most (about 0.1 s); a normal complaint needs a few dozen.
_MAX_TOKEN_CHECKS: Final = 100_000
# A token longer than this is no key (a key is well under a kilobyte) and is not hashed whole.
_MAX_TOKEN_BYTES: Final = 1024
_WHITESPACE: Final = frozenset(b" \t\n\r\x0b\x0c")
_PUNCTUATION: Final = frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_WORD: Final = re.compile(rb"\S+")


def blank_and_cut(
    stderr: bytes, written: Sequence[str] = (), known_sha256: Collection[str] = ()
) -> tuple[str, bool]:
    """``stderr`` as text, blanked of secrets, cut to :data:`MAX_STDERR_CHARS`; and whether
    anything was cut off.

    ``written`` are secrets the sink handled itself, so it can look for their pieces:

    - a line holding :data:`MIN_SECRET_PIECE` or more consecutive characters of one (a secret
      printed whole, or in pieces with text between them) becomes :data:`BLANKED`;
    - so does every line touched by one printed across line breaks: the secret is looked for
      in the whole output with all white space removed (a wrapped or indented continuation).

    The whole line goes, not only the piece: what else the line says about the secret is
    unknown. A piece shorter than :data:`MIN_SECRET_PIECE` characters next to other text stays;
    looking for shorter pieces would blank ordinary words that happen to occur in a key, and no
    rule of this kind stops a program that prints a secret encoded.

    ``known_sha256`` are hashes of secrets the sink has only seen hashed (records, ``get``): a
    token whose SHA-256 is one of them is replaced by :data:`BLANKED`. Tokens are the pieces of
    each run of non-white-space that start at its beginning or after an ASCII punctuation
    character and end at its end or before one: ``value=<key>``, ``"<key>",`` and ``(<key>)``
    all yield ``<key>``, and a key that itself holds ``-``, ``_`` or ``.`` is still one
    candidate. A key wrapped at a line break is found too: the end of a line's last run
    joined to the start of the next line's first one; both lines are then blanked.

    Only what can still be logged is looked at: once :data:`MAX_STDERR_CHARS` are kept, the rest
    is dropped unchecked. Hashing the candidates has a budget besides (a long run dense with
    punctuation has a candidate for every pair of its boundaries): once it is spent, the rest of
    the output is replaced by :data:`NOT_CHECKED`, never logged unchecked.
    """
    lines = stderr.splitlines()
    blanked = _lines_holding(lines, [s.encode() for s in written if s])
    checker = _TokenChecker(frozenset(known_sha256))
    kept: list[bytes] = []
    size = 0  # bytes kept so far, newlines included: never fewer than the characters
    cut = False
    for index, line in enumerate(lines):
        if size > MAX_STDERR_CHARS:
            cut = True  # the rest would be cut off: it is neither checked nor logged
            break
        following = lines[index + 1] if index + 1 < len(lines) else b""
        if checker.known and index not in blanked and checker.wrapped(line, following):
            blanked |= {index, index + 1}
        if index in blanked:
            piece, whole = BLANKED.encode(), True
        elif checker.known:
            checked = checker.blank_tokens(line, room=MAX_STDERR_CHARS - size)
            if checked is None:
                kept.append(NOT_CHECKED.encode())
                cut = True
                break
            piece, whole = checked
        else:
            piece, whole = line, True
        kept.append(piece)
        size += len(piece) + 1
        if not whole:
            cut = True
            break
    text = b"\n".join(kept).decode("utf-8", errors="replace").rstrip()
    if len(text) > MAX_STDERR_CHARS:
        return text[:MAX_STDERR_CHARS], True
    return text, cut


def _lines_holding(lines: Sequence[bytes], secrets: Sequence[bytes]) -> set[int]:
    """The indexes of the lines holding a piece of a secret, or part of one printed across
    line breaks (see :func:`blank_and_cut`)."""
    if not secrets:
        return set()
    # The output without white space, and the line each remaining byte came from.
    compact = bytearray()
    line_of: list[int] = []
    for index, line in enumerate(lines):
        for byte in line:
            if byte not in _WHITESPACE:
                compact.append(byte)
                line_of.append(index)
    found: set[int] = set()
    for secret in secrets:
        needle = bytes(byte for byte in secret if byte not in _WHITESPACE)
        start = compact.find(needle) if needle else -1
        while start != -1:
            found.update(line_of[start : start + len(needle)])
            start = compact.find(needle, start + 1)
        size = min(MIN_SECRET_PIECE, len(secret))
        pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
        found.update(
            index for index, line in enumerate(lines) if any(piece in line for piece in pieces)
        )
    return found


#: What a stored secret may carry after the token a program prints of it.
_STORED_ENDINGS: tuple[bytes, ...] = (b"", b"\n", b"\r\n")


class _TokenChecker:
    """Finds tokens whose SHA-256 is known, within one call's budget of hashes."""

    def __init__(self, known: frozenset[str]) -> None:
        self.known = known
        self._budget = _MAX_TOKEN_CHECKS

    def _matches(self, candidate: bytes) -> bool:
        self._budget -= 1
        # A stored secret often ends with a newline (a file written with `echo`): its known
        # hash is then that of the token and the line break the program did not print.
        return any(
            hashlib.sha256(candidate + ending).hexdigest() in self.known
            for ending in _STORED_ENDINGS
        )

    def blank_tokens(self, line: bytes, *, room: int) -> tuple[bytes, bool] | None:
        """``line`` with every known token blanked, as far as ``room`` bytes of it can still be
        logged, and whether that is the whole line (what lies beyond is dropped unchecked);
        None when the budget ran out."""
        out = bytearray()
        position = 0
        for word in _WORD.finditer(line):
            shown = room - len(out) - (word.start() - position)
            if shown <= 0:
                return bytes(out), False
            text = word.group()
            spans = self._known_spans(text, starts_below=shown)
            if spans is None:
                return None
            piece, whole = _blank_spans(text, spans, keep=shown)
            out += line[position : word.start()] + piece
            if not whole:
                return bytes(out), False
            position = word.end()
        return bytes(out + line[position:]), True

    def _known_spans(self, word: bytes, *, starts_below: int) -> list[tuple[int, int]] | None:
        """Where in ``word`` a token with a known hash starting before ``starts_below`` is;
        None when the budget ran out."""
        spans = []
        starts, ends = _boundaries(word)
        for start in starts[: bisect.bisect_left(starts, starts_below)]:
            # Only the ends that make a token of 1 to _MAX_TOKEN_BYTES bytes from here.
            first = bisect.bisect_right(ends, start)
            last = bisect.bisect_right(ends, start + _MAX_TOKEN_BYTES)
            for end in ends[first:last]:
                if self._budget <= 0:
                    return None
                if self._matches(word[start:end]):
                    spans.append((start, end))
        return spans

    def wrapped(self, line: bytes, following: bytes) -> bool:
        """Whether a known token runs from the end of ``line`` into the start of ``following``
        (a key wrapped at a line break, the continuation maybe indented). False also once the
        budget ran out: the lines are then checked one by one, where the budget stops that."""
        words = _WORD.findall(line)
        first = _WORD.search(following)
        if not words or first is None:
            return False
        head, tail = words[-1], first.group()
        tail_ends = _boundaries(tail)[1]
        for start in _boundaries(head)[0]:
            kept = len(head) - start
            if kept == 0:
                continue  # nothing of this line: the next line's own tokens are checked alone
            # Ends that take at least one byte of the next line, within the token size.
            first_end = bisect.bisect_right(tail_ends, 0)
            last_end = bisect.bisect_right(tail_ends, _MAX_TOKEN_BYTES - kept)
            for end in tail_ends[first_end:last_end]:
                if self._budget <= 0:
                    return False
                if self._matches(head[start:] + tail[:end]):
                    return True
        return False


def _blank_spans(word: bytes, spans: Sequence[tuple[int, int]], *, keep: int) -> tuple[bytes, bool]:
    """``word`` with each span replaced by :data:`BLANKED` (overlapping spans as one), its
    other bytes only below ``keep``; and whether that is all of it."""
    out = bytearray()
    position = 0
    for start, end in sorted(spans):
        if end <= position:
            continue  # inside a token already blanked
        out += word[position : max(start, position)] + BLANKED.encode()
        position = end
    out += word[position:keep]
    return bytes(out), max(position, keep) >= len(word)


def _boundaries(word: bytes) -> tuple[list[int], list[int]]:
    """Where a token may start in ``word`` (its start, or after punctuation) and end (its end,
    or before punctuation)."""
    starts = [0] + [i + 1 for i, byte in enumerate(word) if byte in _PUNCTUATION]
    ends = [i for i, byte in enumerate(word) if byte in _PUNCTUATION] + [len(word)]
    return starts, ends
