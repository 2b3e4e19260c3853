"""ORM models, one module per aggregate. Importing this package registers every table."""

from catalog.models.analytics import (
    AnalyticsRollup,
    ProductDailyStat,
    ProductRating,
    ProductView,
    StockEvent,
)
from catalog.models.brand import Brand
from catalog.models.category import Category
from catalog.models.image import ImageRendition, ProductImage, ProductImageVariant
from catalog.models.imports import ImportJob, ImportRowError, ImportStatus
from catalog.models.product import Product, ProductStatus, ProductVariant
from catalog.models.search import SearchClick, SearchEvent, SearchQuery, SearchSynonym
from catalog.models.user import ApiKey, RefreshToken, Role, User

__all__ = [
    "AnalyticsRollup",
    "ApiKey",
    "Brand",
    "Category",
    "ImageRendition",
    "ImportJob",
    "ImportRowError",
    "ImportStatus",
    "Product",
    "ProductDailyStat",
    "ProductImage",
    "ProductImageVariant",
    "ProductRating",
    "ProductStatus",
    "ProductVariant",
    "ProductView",
    "RefreshToken",
    "Role",
    "SearchClick",
    "SearchEvent",
    "SearchQuery",
    "SearchSynonym",
    "StockEvent",
    "User",
]
