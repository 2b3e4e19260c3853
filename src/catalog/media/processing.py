"""Image validation and renditions with Pillow, run in worker processes.

An upload is checked in this order, and refused at the first failure:

1. its first bytes must be a JPEG, PNG, WebP or GIF signature (the file name and the declared
   content type are ignored); SVG, HTML, PDF and anything else is refused with 415;
2. it must not also be something else: markup or a PDF header in the first kilobyte (what
   browsers and PDF readers sniff), or data after the image's end (an appended archive or
   document) make a polyglot, refused with 422;
3. Pillow opens it with only the detected format allowed and reads the header: a pixel count
   above `media_max_pixels` is refused *before* any pixel is decoded (decompression bombs);
4. the first frame is decoded completely: truncated and corrupt files are refused with 422.

An accepted image is turned upright (EXIF orientation), converted to sRGB (embedded ICC
profile), stripped of every metadata (EXIF, GPS, XMP, comments, ICC), and stored as:

* `original`: the full-size image re-encoded in its own family (JPEG, PNG or WebP; a GIF's
  first frame as PNG), so no byte of the upload is served as-is;
* one rendition per configured size (160, 480 and 1024 px on the long side by default, never
  enlarged) in WebP and in JPEG (transparency flattened on white for JPEG);
* a placeholder: a WebP of at most 16 px as a `data:` URI to show while the image loads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import multiprocessing
import os
import re
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import anyio
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from catalog.config import Settings
from catalog.kit import metrics
from catalog.media.storage import content_key

# Pillow's own guard (a warning above the limit, an error above twice the limit) agrees with
# ours; we refuse above the limit explicitly, so the warning adds nothing.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
ORIGINAL_FORMAT = {"jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "png"}
PLACEHOLDER_SIZE = 16
HEADER_SCAN = 1024
_MARKUP = re.compile(
    rb"<(?:script|html|svg|body|head|iframe|object|embed|\?php|!doctype|\?xml)\b|%PDF-",
    re.IGNORECASE,
)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
WORKER_NICENESS = 10


class ImageRefused(Exception):
    """An upload that is not an acceptable image; `status` is 413, 415 or 422."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __reduce__(self) -> tuple[type[ImageRefused], tuple[int, str]]:
        # Raised in a worker process: travels back by pickle.
        return (ImageRefused, (self.status, self.detail))


@dataclass(frozen=True, slots=True)
class RenditionFile:
    name: str  # "original" or the size on the long side ("160", "480", ...)
    format: str  # jpeg | png | webp
    width: int
    height: int
    data: bytes
    key: str  # content-addressed storage key


def _file(name: str, fmt: str, image: Image.Image, settings: Settings) -> RenditionFile:
    data = _encode(image, fmt, settings)
    return RenditionFile(name, fmt, image.width, image.height, data, content_key(data, fmt))


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    source_format: str
    source_sha256: str
    width: int
    height: int
    placeholder: str
    renditions: list[RenditionFile]


def sniff(data: bytes) -> str | None:
    """The image format named by the file's signature, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def _describe(data: bytes) -> str:
    head = data[:HEADER_SCAN].lstrip().lower()
    if head.startswith(b"%pdf"):
        return "a PDF document"
    if b"<svg" in head:
        return "an SVG image"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML document"
    if head.startswith(b"<"):
        return "an XML or HTML document"
    return "not a supported image"


def _end_of_image(data: bytes, fmt: str) -> int | None:
    """Where the image's own data ends, from its container format (None when unknown)."""
    if fmt == "jpeg":
        end = data.rfind(b"\xff\xd9")
        return end + 2 if end >= 0 else None
    if fmt == "png":
        end = data.rfind(b"IEND\xaeB`\x82")
        return end + 8 if end >= 0 else None
    if fmt == "webp":
        size = int.from_bytes(data[4:8], "little") + 8
        return size + (size & 1)
    end = data.rstrip(b"\x00").rfind(b";")
    return end + 1 if end >= 0 else None


def check_signature(data: bytes) -> str:
    if not data:
        raise ImageRefused(422, "The file is empty")
    fmt = sniff(data)
    if fmt is None:
        raise ImageRefused(
            415, f"The file is {_describe(data)}: only JPEG, PNG, WebP and GIF images are accepted"
        )
    if _MARKUP.search(data[:HEADER_SCAN]):
        raise ImageRefused(
            422, f"The file is a {fmt.upper()} image that also contains markup or a PDF header"
        )
    end = _end_of_image(data, fmt)
    if end is not None and end < len(data) and data[end:].strip(b"\x00\r\n\t "):
        raise ImageRefused(
            422,
            f"The file has {len(data) - end} bytes after the end of its {fmt.upper()} image "
            "(an appended document or archive)",
        )
    return fmt


def _normalized(image: Image.Image) -> Image.Image:
    """Upright, sRGB, RGB or RGBA, with no metadata at all."""
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    mode = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    out: Image.Image | None = None
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            base = image if image.mode in ("RGB", "RGBA", "CMYK") else image.convert(mode)
            out = ImageCms.profileToProfile(
                base, source, _SRGB, outputMode="RGB" if base.mode == "CMYK" else base.mode
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            out = None  # an unusable profile: take the values as sRGB
    if out is None:
        out = image.convert(mode)
    if out is image:
        out = image.copy()
    out.info = {}
    return out


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _encode(image: Image.Image, fmt: str, settings: Settings) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        _flatten(image).save(
            buf, "JPEG", quality=settings.media_jpeg_quality, optimize=True, progressive=True
        )
    elif fmt == "webp":
        image.save(buf, "WEBP", quality=settings.media_webp_quality, method=4)
    else:
        image.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _fit(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _too_many_pixels(settings: Settings) -> str:
    return (
        f"The image declares more than {settings.media_max_pixels / 1e6:g} megapixels "
        "(refused before decoding)"
    )


def process(data: bytes, settings: Settings) -> ProcessedImage:
    """Validate and process one upload (blocking and CPU-bound: `ImageProcessor` runs it in a
    worker process)."""
    Image.MAX_IMAGE_PIXELS = settings.media_max_pixels
    fmt = check_signature(data)
    pillow_format = {v: k for k, v in FORMATS.items()}[fmt]
    try:
        image = Image.open(io.BytesIO(data), formats=[pillow_format])
    except Image.DecompressionBombError as exc:
        raise ImageRefused(422, _too_many_pixels(settings)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(422, f"The {fmt.upper()} file is corrupt: {exc}") from exc
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageRefused(422, "The image has no pixels")
        if width * height > settings.media_max_pixels:
            raise ImageRefused(
                422,
                f"The image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                f"at most {settings.media_max_pixels / 1e6:g} megapixels are accepted",
            )
        try:
            image.seek(0)  # a GIF or animated WebP: the first frame
            image.load()
            upright = _normalized(image)
        except Image.DecompressionBombError as exc:
            raise ImageRefused(422, _too_many_pixels(settings)) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRefused(
                422, f"The {fmt.upper()} file is truncated or corrupt: {exc}"
            ) from exc

    renditions: list[RenditionFile] = []
    original_format = ORIGINAL_FORMAT[fmt]
    renditions.append(_file("original", original_format, upright, settings))
    current = upright
    for size in sorted(settings.media_rendition_sizes, reverse=True):
        target = _fit(upright.size, size)
        if target != current.size:
            # Each size from the previous (larger) one: much faster, and as sharp with Lanczos.
            current = current.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        for out_format in ("webp", "jpeg"):
            renditions.append(_file(str(size), out_format, current, settings))
    tiny = current.resize(_fit(current.size, PLACEHOLDER_SIZE), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    tiny.save(buf, "WEBP", quality=40)
    placeholder = "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()
    return ProcessedImage(
        source_format=fmt,
        source_sha256=hashlib.sha256(data).hexdigest(),
        width=upright.width,
        height=upright.height,
        placeholder=placeholder,
        renditions=renditions,
    )


def _worker_started() -> None:
    # Requests come first: image work takes the CPU the server's processes leave.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


_pools: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    """One pool of image workers per process (and size), started on first use."""
    pool = _pools.get(workers)
    if pool is None:
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_started,
        )
        _pools[workers] = pool
    return pool


class ImageProcessor:
    """Runs `process` in worker processes, at most `media_processing_concurrency` images at a
    time. Decoding and encoding never run on the event loop nor hold its GIL, and the workers
    run at a lower CPU priority, so uploads do not slow other requests down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = settings.media_processing_concurrency
        # Waiting uploads wait here, not with their bytes in the pool's queue.
        self.limiter = anyio.CapacityLimiter(self.workers)
        Image.MAX_IMAGE_PIXELS = settings.media_max_pixels

    async def process(self, data: bytes) -> ProcessedImage:
        async with self.limiter:
            loop = asyncio.get_running_loop()
            with metrics.image_processing():
                return await loop.run_in_executor(_pool(self.workers), process, data, self.settings)
