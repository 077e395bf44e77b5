"""`python -m client tag PATH... --out tags.jsonl|tags.csv`: tag a catalogue of images.

Through the service (`--url`, several requests in flight) or in process (`--store`), one row
per image, resumable, with progress on stderr and a summary at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TextIO

from client.errors import TaggerError
from client.http import AsyncTaggerClient, gather_all
from client.images import ImageInput, UnreadableInput, encode
from client.output import RowWriter, done_paths, format_of, row
from client.results import ImageResult

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
PROGRESS_EVERY_S = 0.5
PROGRESS_LINE_EVERY_S = 5.0  # when stderr is not a terminal
# In-process chunks: enough images for full model batches, few enough to show progress.
STORE_CHUNK = 64
# Chunks read and waiting per request slot (--url): when an answer frees a slot, the next
# request is ready to go at once, as a load generator's would be.
READY_PER_SLOT = 2

TagChunk = Callable[[list[ImageInput]], Awaitable[list[ImageResult]]]
ReadChunk = Callable[[list[str]], list[ImageInput]]


def find_images(paths: Iterable[str]) -> list[str]:
    """Files named on the command line as they are; folders walked (sorted) for image files."""
    found: list[str] = []
    for given in paths:
        if os.path.isdir(given):
            for folder, dirs, files in os.walk(given):
                dirs.sort()
                found += [
                    os.path.join(folder, name)
                    for name in sorted(files)
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES
                ]
        else:
            found.append(given)
    return list(dict.fromkeys(found))


class Progress:
    """A bar with images/s and ETA on stderr, redrawn in place on a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.errors = total, 0, 0
        self.stream = stream
        self.started = time.monotonic()
        self._tty = stream.isatty()
        self._shown = 0.0

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def add(self, count: int, errors: int) -> None:
        self.done += count
        self.errors += errors
        now = time.monotonic()
        if now - self._shown >= (PROGRESS_EVERY_S if self._tty else PROGRESS_LINE_EVERY_S):
            self._shown = now
            self.show()

    def show(self, end: str = "") -> None:
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = f"{left:.0f} s" if left != float("inf") else "?"
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"[{bar}] {self.done}/{self.total} images, {rate:.0f} images/s, "
            f"ETA {eta}, {self.errors} errors"
        )
        self.stream.write(("\r" + line) if self._tty else line + "\n")
        if end:
            self.stream.write(end)
        self.stream.flush()


async def run_tagging(
    paths: list[str],
    tag: TagChunk,
    chunk_size: int,
    workers: int,
    writer: RowWriter,
    progress: Progress,
    read: ReadChunk = list,
) -> tuple[Counter[str], Counter[str]]:
    """Tag `paths` in chunks with `workers` chunks in flight, writing each chunk's rows as it
    completes. Returns (top-1 label counts, error counts by code).

    Between an answer and the next request a worker does as little as it can: its next chunk
    was `read` while the previous request was out, and only once the next request has gone
    does it hand the answer to the one recorder task (rows, counts, progress)."""
    labels: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    chunks = iter([paths[i : i + chunk_size] for i in range(0, len(paths), chunk_size)])
    answered: asyncio.Queue[tuple[list[str], list[ImageResult]] | None] = asyncio.Queue()

    async def worker() -> None:
        # One shared iterator: each chunk is taken once.
        chunk = next(chunks, None)
        images = read(chunk) if chunk is not None else []
        answer = None
        while chunk is not None:
            request = asyncio.ensure_future(tag(images))
            try:
                await asyncio.sleep(0)  # the request goes out first; then the previous answer
                if answer is not None:  # goes to the recorder, and the next chunk is read
                    answered.put_nowait(answer)
                following = next(chunks, None)
                images = read(following) if following is not None else []
                answer = (chunk, await request)
            finally:
                request.cancel()  # a no-op once it is done; else this worker was cancelled
            chunk = following
        if answer is not None:
            answered.put_nowait(answer)

    def record(chunk: list[str], results: list[ImageResult]) -> None:
        writer.write([row(path, result) for path, result in zip(chunk, results, strict=True)])
        failed = 0
        for result in results:
            if result.error is not None:
                errors[result.error.code] += 1
                failed += 1
            elif result.label is not None:
                labels[result.label] += 1
        progress.add(len(chunk), failed)

    async def recorder() -> None:
        while (item := await answered.get()) is not None:
            record(*item)

    async def tag_all() -> None:
        await gather_all([worker() for _ in range(max(1, workers))])
        answered.put_nowait(None)

    await gather_all([tag_all(), recorder()])
    return labels, errors


def read_files(chunk: list[str]) -> list[ImageInput]:
    """Each file's bytes, read ahead of its request; a file that cannot be read stays a path,
    for the client to report as that image's error."""
    images: list[ImageInput] = []
    for index, path in enumerate(chunk):
        try:
            images.append(encode(path, index))
        except UnreadableInput:
            images.append(path)
    return images


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tag = commands.add_parser("tag", help="tag image files and folders into a JSONL or CSV file")
    tag.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    tag.add_argument("--out", required=True, type=Path, help="tags.jsonl or tags.csv")
    where = tag.add_mutually_exclusive_group()
    where.add_argument("--url", help="the service (default http://localhost:8000)")
    where.add_argument("--store", type=Path, help="a model store: tag in this process")
    tag.add_argument("--model", default="fashion")
    tag.add_argument("--ref", default=None, help="version or alias (default: served / latest)")
    tag.add_argument("--top-k", type=int, default=3)
    tag.add_argument("--concurrency", type=int, default=4, help="requests in flight (--url)")
    tag.add_argument("--retries", type=int, default=3, help="retries per request (--url)")
    tag.add_argument("--api-key", default=os.environ.get("TAGGER_API_KEY") or None)
    tag.add_argument("--resume", action="store_true", help="skip paths already in --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        fmt = format_of(args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.concurrency < 1 or args.top_k < 1:
        print("error: --concurrency and --top-k must be at least 1", file=sys.stderr)
        return 2
    if args.out.exists() and args.out.stat().st_size and not args.resume:
        print(f"error: {args.out} exists; pass --resume to continue it", file=sys.stderr)
        return 2
    done = done_paths(args.out, fmt) if args.resume else set()
    paths = [p for p in find_images(args.paths) if p not in done]
    if done:
        print(f"resuming: {len(done)} images already in {args.out}", file=sys.stderr)
    try:
        return asyncio.run(_tag(args, fmt, paths))
    except TaggerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: --resume tags the rest into {args.out}", file=sys.stderr)
        return 130


async def _tag(args: argparse.Namespace, fmt: str, paths: list[str]) -> int:
    progress = Progress(len(paths), sys.stderr)
    writer = RowWriter(args.out, fmt)
    try:
        if args.store is not None:
            from client.embedded import Tagger  # loads the serving code and a runtime

            tagger = await asyncio.to_thread(
                Tagger.from_store, args.store, args.model, args.ref or "latest"
            )
            try:

                async def tag(chunk: list[ImageInput]) -> list[ImageResult]:
                    return await asyncio.to_thread(tagger.classify, chunk, args.top_k)

                progress.started = time.monotonic()
                labels, errors = await run_tagging(paths, tag, STORE_CHUNK, 1, writer, progress)
            finally:
                tagger.close()
        else:
            url = args.url or "http://localhost:8000"
            version, alias = _ref(args.ref)
            async with AsyncTaggerClient(
                url, args.api_key, retries=args.retries, concurrency=args.concurrency
            ) as client:
                chunk_size = (await client.limits()).max_images_per_request

                async def tag(chunk: list[ImageInput]) -> list[ImageResult]:
                    return await client.classify(
                        chunk, args.model, version=version, alias=alias, top_k=args.top_k
                    )

                progress.started = time.monotonic()
                workers = READY_PER_SLOT * args.concurrency  # the client keeps to --concurrency
                labels, errors = await run_tagging(
                    paths, tag, chunk_size, workers, writer, progress, read_files
                )
    finally:
        writer.close()
    if progress.total:
        progress.show(end="\n")
    _summary(progress, labels, errors, args.out)
    return 0


def _ref(ref: str | None) -> tuple[int | None, str | None]:
    if ref is None or ref == "latest":
        return None, None
    return (int(ref), None) if ref.isdigit() else (None, ref)


def _summary(progress: Progress, labels: Counter[str], errors: Counter[str], out: Path) -> None:
    elapsed = time.monotonic() - progress.started
    print(
        f"tagged {progress.done} images in {elapsed:.1f} s ({progress.rate():.1f} images/s), "
        f"{progress.errors} errors; rows in {out}"
    )
    for label, count in labels.most_common():
        print(f"  {label}: {count}")
    for code, count in errors.most_common():
        print(f"  error {code}: {count}")
