"""Core metadata of a remote wheel by HTTP range reads of its zip: the tail (with the
central directory), then the ``METADATA`` member if the tail did not hold it. Remembers per
origin whether range requests work."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable

from lockfix.dist.metadata import (
    MAX_METADATA_SIZE,
    CoreMetadata,
    MetadataError,
    parse_core_metadata,
)
from lockfix.dist.simple import IndexFile
from lockfix.index.session import Response, Session, TooLarge, raise_for_status
from lockfix.urls import Origin, origin, redact

log = logging.getLogger(__name__)

DEFAULT_RANGE_SUFFIX = 64 * 1024
MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024


@functools.cache
def _content_range() -> re.Pattern[str]:
    return re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.IGNORECASE)


_IDENTITY = {"Accept-Encoding": "identity"}
# What to do with a whole file a server sent instead of a range: read its metadata.
WholeFile = Callable[[Response], Awaitable[CoreMetadata]]


def _encoded(response: Response) -> bool:
    return response.headers.get("content-encoding", "identity") != "identity"


class RangeReader:
    """Reads wheel metadata by ranges; ``no_ranges`` holds the origins found not to serve
    them (their files are then downloaded whole)."""

    def __init__(self, session: Session, suffix: int = DEFAULT_RANGE_SUFFIX) -> None:
        self.session, self.suffix = session, suffix
        self.no_ranges: set[Origin] = set()

    def usable(self, url: str) -> bool:
        return origin(url) not in self.no_ranges

    async def metadata(
        self, file: IndexFile, project: str | None, whole: WholeFile
    ) -> CoreMetadata | None:
        """The metadata of ``file``, or None: read it some other way. ``whole`` reads a
        whole-file answer to the first range request."""
        url = file.url
        try:
            got = await self.session.with_retries(
                url, f"range read of {file.filename}", lambda: self._tail(url, whole)
            )
        except TooLarge:
            return None
        if got is None or isinstance(got, CoreMetadata):
            return got
        tail, tail_start, total = got
        from lockfix.dist import _zip  # the zip reader, once a request has been answered

        try:
            return await self._from_tail(url, tail, tail_start, total, project)
        except (_zip.ZipFormatError, MetadataError, TooLarge) as e:
            log.info("range read of %s failed (%s); downloading it", redact(url), e)
            return None

    def _give_up(self, url: str) -> None:
        self.no_ranges.add(origin(url))

    async def _tail(
        self, url: str, whole: WholeFile
    ) -> tuple[bytes, int, int] | CoreMetadata | None:
        """One attempt at the last ``suffix`` bytes: (bytes, their offset, file size)."""
        async with self.session.slots:
            if not self.usable(url):
                return None
            headers = {"Range": f"bytes=-{self.suffix}", **_IDENTITY}
            response = await self.session.open(url, headers, kind="range")
            try:
                code, encoded = response.status_code, _encoded(response)
                if code == 200 and not encoded:
                    # Ranges ignored: this is the whole file; use it rather than ask again.
                    log.info(
                        "range requests not supported by %s; downloading whole files", redact(url)
                    )
                    self._give_up(url)
                    self.session.stats.ranges_ignored += 1
                    return await whole(response)
                if code in (416, 501):
                    if code == 501:
                        self._give_up(url)
                    return None
                if code != 206 and not (code == 200 and encoded):
                    raise_for_status(code, response.headers, "range request", url)
                if encoded:  # asked for identity: no usable range reads from this host
                    self._give_up(url)
                    return None
                m = _content_range().match(response.headers.get("content-range", ""))
                if m is None:
                    return None
                start, total = int(m.group(1)), int(m.group(3))
                tail = await response.read(self.suffix)
            finally:
                await response.aclose()
        return tail, start, total

    async def get(self, url: str, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of ``url``, or None if the server doesn't do ranges after all."""

        async def attempt() -> bytes | None:
            async with self.session.slots:
                headers = {"Range": f"bytes={start}-{end - 1}", **_IDENTITY}
                response = await self.session.open(url, headers, kind="range")
                try:
                    if response.status_code != 206 or _encoded(response):
                        if response.status_code != 200:
                            raise_for_status(
                                response.status_code, response.headers, "range request", url
                            )
                        return None
                    m = _content_range().match(response.headers.get("content-range", ""))
                    if m is None or int(m.group(1)) != start:
                        return None
                    data = await response.read(end - start)
                finally:
                    await response.aclose()
            return data if len(data) == end - start else None

        return await self.session.with_retries(url, "range request", attempt)

    async def _from_tail(
        self, url: str, tail: bytes, tail_start: int, total: int, project: str | None
    ) -> CoreMetadata | None:
        from lockfix.dist import _zip

        cd = _zip.find_central_directory(tail, tail_start, total)
        if cd.size > MAX_CENTRAL_DIRECTORY:
            raise _zip.ZipFormatError("central directory too large")
        if cd.offset < tail_start:
            # METADATA is among the last entries, just before the directory (with RECORD,
            # which grows like the directory): take as much again, to spare a third request.
            start = max(0, cd.offset - cd.size)
            head = await self.get(url, start, tail_start)
            if head is None:
                return None
            tail, tail_start = head + tail, start
        rel = cd.offset - tail_start
        member = _zip.metadata_member(tail[rel : rel + cd.size], project)
        if max(member.uncompressed_size, member.compressed_size) > MAX_METADATA_SIZE:
            raise _zip.ZipFormatError("METADATA larger than the size limit")
        if member.header_offset >= tail_start:
            chunk = tail[member.header_offset - tail_start :]
        else:
            # Local header + name + extra + data; the local extra field may differ from the
            # central one.
            want_end = min(
                total,
                member.header_offset
                + _zip.LFH_SIZE
                + len(member.name.encode())
                + member.extra_len
                + member.compressed_size
                + 1024,
            )
            got = await self.get(url, member.header_offset, want_end)
            if got is None:
                return None
            chunk = got
        data_start, data_end = _zip.local_data_span(chunk, member)
        if data_end > len(chunk):
            more = await self.get(
                url, member.header_offset + len(chunk), member.header_offset + data_end
            )
            if more is None:
                return None
            chunk += more
        raw = _zip.decompress_member(member, chunk[data_start:data_end], MAX_METADATA_SIZE)
        return parse_core_metadata(raw)
