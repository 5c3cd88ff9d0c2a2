"""Decoding one image file from a user: the one place where its faults become user errors.

Image files come from anyone (an image folder to search on, a file to classify), so a corrupt,
empty or truncated file, or a decompression bomb (a few kilobytes that decode to gigapixels),
is refused with one line naming the file. The pixel count is checked from the header, before
anything is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from automl.core.errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_PIXELS = 64 * 1024 * 1024  # 8192 x 8192: larger photos are not what a CNN here classifies


def open_image(path: str | Path, mode: str = "RGB") -> Image:
    """The image at ``path`` decoded and converted to ``mode`` ("RGB", "L")."""
    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)  # we check the size ourselves
            with PILImage.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise DataError(f"image {str(path)!r} is {image.width}x{image.height} pixels, more than "
                                    f"{MAX_PIXELS} (a decompression bomb?)")
                return image.convert(mode)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image {str(path)!r} does not exist") from None
    except PILImage.DecompressionBombError:
        raise DataError(f"image {str(path)!r} decodes to too many pixels (a decompression bomb?)") from None
    except Exception as error:  # PIL's decoders raise many kinds for a damaged file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"image {str(path)!r} cannot be read: {reason}") from None
