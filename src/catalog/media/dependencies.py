from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from catalog.media.processing import ImageProcessor
from catalog.media.storage import MediaStorage


async def get_media_storage(request: Request) -> MediaStorage:
    storage: MediaStorage = request.app.state.media_storage
    return storage


async def get_image_processor(request: Request) -> ImageProcessor:
    processor: ImageProcessor = request.app.state.image_processor
    return processor


MediaStorageDep = Annotated[MediaStorage, Depends(get_media_storage)]
ImageProcessorDep = Annotated[ImageProcessor, Depends(get_image_processor)]
