"""ORM models, one module per aggregate. Importing this package registers every table."""

from catalog.models.brand import Brand
from catalog.models.category import Category
from catalog.models.product import Product, ProductStatus, ProductVariant

__all__ = ["Brand", "Category", "Product", "ProductStatus", "ProductVariant"]
