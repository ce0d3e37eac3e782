"""The text inside a prescription QR code: our digits format, and the EU "HC1:" format read too.

Format 1 is FORMAT_PREFIX ("01") + digits(zlib(COSE_Sign1)). Why digits: pharmacy USB scanners
"type" what they read like a keyboard, and under a Russian or Uzbek Cyrillic layout letters and
most symbols arrive garbled; digits survive every layout. QR numeric mode packs 3 digits in 10
bits, so digits cost almost nothing over binary.

Digits: the bytes are cut into chunks of 7; each chunk is a big-endian integer below
2**56 < 10**17, written as exactly 17 zero-padded digits (17/7 = 2.43 digits per byte; in QR
numeric mode 8.14 bits per byte, against 8.25 for Base45 in alphanumeric mode). The last chunk
of k < 7 bytes is written with the fewest digits that can hold 256**k - 1 (3, 5, 8, 10, 13 or 15
digits). Those widths differ and none is a multiple of 17, so the length of the text alone says
where the short chunk is: decoding is the exact inverse and rejects any text that no byte string
encodes (impossible length, a chunk value too large, any character but ASCII 0-9).

Reading also accepts EU DCC codes, "HC1:" + Base45(zlib(COSE)) with zlib optional. Deflate
ignores the padding bits after its last block, so a few different texts carry the same COSE
bytes: the text is no identifier, the signed prescription id is.
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import base45

from .errors import ProtocolError

logger = logging.getLogger(__name__)

# 7 bytes fit 17 digits and a signed 64-bit integer: readers in Java, Go or C need no bignums
CHUNK_BYTES = 7
CHUNK_DIGITS = 17
# digits needed for a last chunk of k bytes: len(str(256**k - 1))
DIGITS_FOR_BYTES = {k: len(str(256**k - 1)) for k in range(1, CHUNK_BYTES + 1)}
# the inverse, for the short last chunk (k < CHUNK_BYTES) only
BYTES_FOR_DIGITS = {d: k for k, d in DIGITS_FOR_BYTES.items() if k < CHUNK_BYTES}


class InvalidDigits(ProtocolError, ValueError):
    """Text that no byte string encodes to."""

    code = "bad_digits"


def digits_length(byte_count: int) -> int:
    """How many digits `bytes_to_digits` writes for `byte_count` bytes."""
    full, rest = divmod(byte_count, CHUNK_BYTES)
    return full * CHUNK_DIGITS + (DIGITS_FOR_BYTES[rest] if rest else 0)


def bytes_to_digits(data: bytes) -> str:
    """Encode bytes as ASCII decimal digits (about 2.43 digits per byte)."""
    view = memoryview(data)
    full_end = len(data) - len(data) % CHUNK_BYTES
    parts = [
        f"{int.from_bytes(view[i:i + CHUNK_BYTES], 'big'):017d}"
        for i in range(0, full_end, CHUNK_BYTES)
    ]
    rest = len(data) - full_end
    if rest:
        width = DIGITS_FOR_BYTES[rest]
        parts.append(f"{int.from_bytes(view[full_end:], 'big'):0{width}d}")
    return "".join(parts)


@lru_cache(maxsize=64)
def _chunk_codecs(full: int) -> tuple[struct.Struct, struct.Struct]:
    """Cut `full` chunks of 17 ASCII digits apart, and pack their values as 8-byte integers:
    one C call each instead of a Python loop per chunk (this runs on every scan)."""
    return struct.Struct(f"{CHUNK_DIGITS}s" * full), struct.Struct(f">{full}Q")


def digits_to_bytes(text: str) -> bytes:
    """Decode what `bytes_to_digits` wrote; raise InvalidDigits for anything else."""
    # str.isascii() is a flag test; bytes.isdigit() then accepts 0-9 only. int() would accept
    # "_", spaces and other scripts' digits: none of them gets that far.
    raw = text.encode("ascii") if text.isascii() else b"?"
    if raw and not raw.isdigit():
        raise InvalidDigits("Only the digits 0-9 may appear in the code.", field="digits")
    full, rest_digits = divmod(len(raw), CHUNK_DIGITS)
    rest_bytes = 0
    if rest_digits:
        rest_bytes = BYTES_FOR_DIGITS.get(rest_digits, 0)
        if not rest_bytes:
            raise InvalidDigits("The code has an impossible length (%(length)s digits).",
                                field="digits", length=len(raw))
    end = full * CHUNK_DIGITS
    cut, pack = _chunk_codecs(full)
    # Pack each chunk as 8 bytes (17 digits stay below 2**57): a chunk is in range exactly when
    # its top byte is zero. Count those bytes, then drop them: C loops over bytes, cheaper than
    # max() over the values.
    out = bytearray(pack.pack(*map(int, cut.unpack_from(raw))))
    if out[::8].count(0) != full:
        raise InvalidDigits("A group of digits is out of range.", field="digits")
    del out[::8]
    if rest_bytes:
        value = int(raw[end:])
        if value >> (8 * rest_bytes):
            raise InvalidDigits("A group of digits is out of range.", field="digits")
        out += value.to_bytes(rest_bytes, "big")
    return bytes(out)


# --- The transport: text in a QR code <-> COSE bytes --------------------------------------

FORMAT_PREFIX = "01"  # our format 1: "01" + digits(zlib(COSE_Sign1))
HC1_PREFIX = "HC1:"  # EU DCC: "HC1:" + Base45(zlib(COSE_Sign1)), zlib optional
# A QR code holds at most 7089 digits (version 40-L), so no scan can be longer: refuse early.
MAX_TEXT_CHARS = 7089
# Scanners append CR/LF (some a tab or spaces); allowed around a text of maximal length.
SCANNER_SLACK_CHARS = 16
# Version 40 at error correction level M holds 5596 digits: the largest code we can draw.
MAX_ENCODED_DIGITS = 5596
# A prescription COSE is well under 1 KiB; bounds the output of a zlib bomb.
MAX_COSE_BYTES = 16 * 1024
ZLIB_LEVEL = 9  # codes are written once and scanned often: smallest symbol wins
_HC_CONTEXT = re.compile(r"HC\d:")


class CodeTooLarge(ProtocolError, ValueError):
    code = "code_too_large"


@dataclass(frozen=True, slots=True)
class TransportResult:
    """The COSE bytes carried by a scanned text, or the reason they could not be read."""

    cose: bytes | None
    reason: str | None = None
    scheme: str | None = None  # "digits" (ours) or "hc1" (EU DCC)
    compressed: bool = False  # True when a zlib stream was inflated


def encode_transport(cose: bytes) -> str:
    """Our format 1: FORMAT_PREFIX + digits of zlib(COSE); refuse what no QR code at M holds."""
    text = FORMAT_PREFIX + bytes_to_digits(zlib.compress(cose, ZLIB_LEVEL))
    if len(text) > MAX_ENCODED_DIGITS:
        raise CodeTooLarge(
            "The code needs %(length)s digits; a QR code at level M holds %(limit)s.",
            length=len(text), limit=MAX_ENCODED_DIGITS,
        )
    return text


def _inflate(data: bytes) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_COSE_BYTES)
    except zlib.error:
        return None
    if inflater.unconsumed_tail or inflater.unused_data or not inflater.eof:
        return None  # too large, trailing bytes, or a truncated stream
    return out


def _has_zlib_header(data: bytes) -> bool:
    # RFC 1950: deflate (CM 8), window <= 32 KiB, header checksum. A COSE message starts with
    # 0xd2, 0xd8 or 0x84, none of which passes, so "no zlib header" means "raw COSE".
    return (len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7
            and ((data[0] << 8) | data[1]) % 31 == 0)


def _fail(reason: str, scheme: str | None = None) -> TransportResult:
    return TransportResult(None, reason, scheme)


def decode_transport(text: object) -> TransportResult:
    """The COSE bytes in a scanned text (ours or EU HC1), tolerant of whitespace at the ends.

    Never raises: every failure is a TransportResult with `reason` set to one of
    not_text, empty, too_long, bad_prefix, unknown_version, bad_digits, bad_base45,
    bad_compression.
    """
    if not isinstance(text, str) and isinstance(text, bytes | bytearray | memoryview):
        if len(text) > MAX_TEXT_CHARS + SCANNER_SLACK_CHARS:
            return _fail("too_long")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return _fail("not_text")
    if not isinstance(text, str):
        return _fail("not_text")
    if len(text) > MAX_TEXT_CHARS + SCANNER_SLACK_CHARS:
        return _fail("too_long")
    text = text.strip()
    if not text:
        return _fail("empty")
    if len(text) > MAX_TEXT_CHARS:
        return _fail("too_long")
    head = text[:len(FORMAT_PREFIX)]
    if len(head) == len(FORMAT_PREFIX) and head.isascii() and head.isdigit():
        if head != FORMAT_PREFIX:
            return _fail("unknown_version", "digits")
        try:
            packed = digits_to_bytes(text[len(FORMAT_PREFIX):])
        except InvalidDigits:
            return _fail("bad_digits", "digits")
        cose = _inflate(packed)  # compression is part of format 1, never optional
        if cose is None:
            return _fail("bad_compression", "digits")
        return TransportResult(cose, None, "digits", compressed=True)
    if text.startswith(HC1_PREFIX):
        try:
            packed = base45.b45decode(text[len(HC1_PREFIX):])
        except Exception:  # the library raises ValueError, but only its docs promise that
            return _fail("bad_base45", "hc1")
        if not _has_zlib_header(packed):
            return TransportResult(packed, None, "hc1", compressed=False)
        cose = _inflate(packed)
        if cose is None:
            return _fail("bad_compression", "hc1")
        return TransportResult(cose, None, "hc1", compressed=True)
    if _HC_CONTEXT.match(text):
        return _fail("unknown_version", "hc1")
    return _fail("bad_prefix")
