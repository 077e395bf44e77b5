"""Hostile images: broken, forged and disguised files in every format, and decompression bombs."""

from __future__ import annotations

from collections.abc import Iterator

import hostile_images as img
from hostile_common import CLASSIFY, MAX_PIXELS, Case, Expect, b64, post_json, raw_post, upload


def image_cases() -> Iterator[Case]:
    fmts = list(img.FORMATS)
    for position, fmt in enumerate(fmts):
        _, ext, ctype = img.FORMATS[fmt]
        good = img.valid(fmt)
        header = img.header_length(fmt)
        name = f"item.{ext}"

        def case(
            label: str,
            data: bytes,
            expect: Expect,
            fmt: str = fmt,
            name: str = name,
            ctype: str = ctype,
        ) -> Case:
            return Case(f"image-{fmt}-{label}", upload(data, name, ctype), expect)

        yield case("valid", good, Expect.OK)
        yield Case(f"image-{fmt}-raw-body", raw_post(CLASSIFY, good, ctype), Expect.OK)
        yield case("empty", b"", Expect.REFUSED)
        yield Case(f"image-{fmt}-raw-empty", raw_post(CLASSIFY, b"", ctype), Expect.REFUSED)
        for cut in (4, 12):
            yield case(f"truncated-at-{cut}", good[:cut], Expect.REFUSED)
        yield case("header-only", good[:header], Expect.REFUSED)
        yield case("truncated-at-half", good[: len(good) // 2], Expect.REFUSED)
        yield case("truncated-last-byte", good[:-1], Expect.SAFE)
        yield case("wrong-magic", b"\0\0\0\0" + good[4:], Expect.REFUSED)
        garbage = bytes(range(256)) * 4
        yield case("garbage-after-header", good[:header] + garbage, Expect.SAFE)
        yield case("trailing-garbage", good + garbage, Expect.SAFE)
        huge = 16384 if fmt == "webp" else 60000
        yield case(f"forged-{huge}x{huge}", img.with_size(fmt, huge, huge), Expect.REFUSED)
        # Too little pixel data for the size: libjpeg pads such a JPEG with grey and warns.
        short = Expect.SAFE if fmt == "jpeg" else Expect.REFUSED
        yield case("forged-1000x1000", img.with_size(fmt, 1000, 1000), short)
        if fmt != "webp":  # VP8L stores width-1: a zero size cannot be written
            yield case("zero-width", img.with_size(fmt, 0, 32), Expect.REFUSED)
            yield case("zero-height", img.with_size(fmt, 32, 0), Expect.REFUSED)
        other = fmts[(position + 1) % len(fmts)]
        _, other_ext, other_ctype = img.FORMATS[other]
        yield Case(
            f"image-{fmt}-disguised-as-{other}",
            upload(good, f"item.{other_ext}", other_ctype),
            Expect.SAFE,
        )
        yield Case(
            f"image-{fmt}-as-text-plain",
            upload(good, "item.txt", "text/plain"),
            Expect.SAFE,
        )
    noise = bytes(range(256)) * 8
    yield Case("image-not-an-image", upload(noise, "x.png"), Expect.REFUSED)
    yield Case(
        "image-svg",
        upload(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", "image/svg+xml"),
        Expect.REFUSED,
    )
    yield Case("image-png-bad-ihdr-crc", upload(img.png(28, 28, ihdr_crc=0)), Expect.REFUSED)
    yield Case("image-png-bad-idat-crc", upload(img.png(28, 28, idat_crc=0)), Expect.SAFE)
    yield Case("image-png-no-iend", upload(img.png(28, 28, iend=False)), Expect.SAFE)
    yield Case("image-png-bit-depth-3", upload(img.png(28, 28, bit_depth=3)), Expect.REFUSED)
    yield Case("image-png-colour-type-5", upload(img.png(28, 28, colour_type=5)), Expect.REFUSED)
    yield Case("image-png-idat-not-zlib", upload(img.png(28, 28, idat=noise)), Expect.REFUSED)
    yield Case(
        "image-bmp-negative-width",
        upload(img.with_size("bmp", -32, 32), "x.bmp", "image/bmp"),
        Expect.REFUSED,
    )
    yield Case(
        "image-tiff-strip-past-end",
        upload(img.tiff(28, 28, data=b"\0" * 10, strip_bytes=10**9), "x.tif", "image/tiff"),
        Expect.REFUSED,
    )


def bomb_cases() -> Iterator[Case]:
    side_over, side_under = (2001, 2000), (2000, 1999)  # MAX_PIXELS is 2000x2000
    for label, (w, h), expect in (
        ("over", side_over, Expect.REFUSED),
        ("under", side_under, Expect.SAFE),
    ):
        yield Case(f"bomb-png-{w}x{h}-{label}-max-pixels", upload(img.png(w, h)), expect)
        yield Case(
            f"bomb-gif-{w}x{h}-{label}-max-pixels",
            upload(img.blank("L", w, h, "gif"), "b.gif", "image/gif"),
            expect,
        )
        yield Case(
            f"bomb-jpeg-{w}x{h}-{label}-max-pixels",
            upload(img.blank("L", w, h, "jpeg"), "b.jpg", "image/jpeg"),
            expect,
        )
        yield Case(
            f"bomb-tiff-{w}x{h}-{label}-max-pixels",
            upload(
                img.blank("L", w, h, "tiff", compression="tiff_adobe_deflate"),
                "b.tif",
                "image/tiff",
            ),
            expect,
        )
        yield Case(
            f"bomb-bmp-rle8-{w}x{h}-{label}-max-pixels",
            upload(img.bmp_rle8(w, h), "b.bmp", "image/bmp"),
            expect,
        )
        yield Case(
            f"bomb-webp-{w}x{h}-{label}-max-pixels",
            upload(img.blank("L", w, h, "webp"), "b.webp", "image/webp"),
            expect,
        )
    w, h = side_under
    yield Case("bomb-png-16-bit-grey", upload(img.png(w, h, bit_depth=16)))
    yield Case("bomb-png-16-bit-rgba", upload(img.png(1000, 1000, bit_depth=16, colour_type=6)))
    for mode, label in (("I;16", "16-bit"), ("I", "32-bit-int"), ("F", "32-bit-float")):
        data = img.blank(mode, w, h, "tiff", compression="tiff_adobe_deflate")
        yield Case(f"bomb-tiff-{label}", upload(data, "b.tif", "image/tiff"))
    nan_inf = (b"\x00\x00\xc0\x7f" + b"\x00\x00\x80\x7f" + b"\x00\x00\x80\xff") * 12
    yield Case(
        "bomb-tiff-float-nan-inf",
        upload(img.tiff(6, 6, bits=32, sample_format=3, data=nan_inf), "f.tif", "image/tiff"),
    )
    # Letterboxing pads to a square of the long side: the extremes ask for terabytes (refused
    # by the allocator at once), 20000x200 for 400 MB. Longer sides between those would really
    # allocate gigabytes on this shared machine, so they are left to the benchmarks.
    for w, h in (
        (1, MAX_PIXELS),
        (MAX_PIXELS, 1),
        (2, MAX_PIXELS // 2),
        (MAX_PIXELS // 2, 2),
        (20000, 200),
        (4000, 1000),
        (1000, 4000),
    ):
        yield Case(f"bomb-aspect-png-{w}x{h}", upload(img.png(w, h)))
    yield Case(
        "bomb-aspect-gif-8000x500", upload(img.blank("L", 8000, 500, "gif"), "a.gif", "image/gif")
    )
    yield Case(
        "bomb-aspect-jpeg-500x8000",
        upload(img.blank("L", 500, 8000, "jpeg"), "a.jpg", "image/jpeg"),
    )
    yield Case(
        "bomb-aspect-png-json-1x4000000",
        post_json({"instances": [{"b64": b64(img.png(1, MAX_PIXELS))}]}),
    )
    yield Case("bomb-deflate-png-2000x2000-zeros", upload(img.png(2000, 2000)))
    yield Case("bomb-deflate-png-ztxt-64mb", upload(img.png_text_bomb(64 * 2**20)))
    yield Case(
        "bomb-deflate-png-idat-64mb-for-28x28", upload(img.png_idat_bomb(28, 28, 64 * 2**20))
    )
    yield Case("bomb-frames-gif-300x16x16", upload(img.gif_frames(300, 16), "f.gif", "image/gif"))
    yield Case("bomb-frames-gif-2000x2x2", upload(img.gif_frames(2000, 2), "f.gif", "image/gif"))
    yield Case(
        "bomb-frames-tiff-200-pages",
        upload(
            img.pillow(
                img.noise(8, 8),
                "tiff",
                save_all=True,
                append_images=[img.noise(8, 8, s) for s in range(199)],
            ),
            "p.tif",
            "image/tiff",
        ),
    )
