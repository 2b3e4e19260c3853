"""A realistic, deterministic demo catalog: brands, a three-level category tree, products and
their variants.

`generate_catalog` is pure: the same seed always gives the same catalog, byte for byte, because
every random choice comes from one `random.Random(seed)` and every timestamp is relative to
`REFERENCE_TIME` rather than the wall clock. Only the database ids are fresh on each seeding.
`seed_into` writes a generated catalog on a connection (tests and benchmarks reuse it) and
`seed_database` is what `catalog seed` runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.config import Settings
from catalog.db import create_engine, new_id
from catalog.kit.slugs import slugify
from catalog.models import Brand, Category, Product, ProductStatus, ProductVariant

__all__ = [
    "BATCH_SIZE",
    "REFERENCE_TIME",
    "AttributeValue",
    "DemoBrand",
    "DemoCatalog",
    "DemoCategory",
    "DemoProduct",
    "DemoVariant",
    "SeedConflict",
    "generate_catalog",
    "seed_database",
    "seed_into",
]

REFERENCE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Every generated timestamp lies before this instant, so the output never depends on `now`."""

BATCH_SIZE = 1000
CURRENCY = "USD"
SLUG_MAX_LENGTH = 180

_YEAR_SECONDS = 365 * 24 * 3600

AttributeValue = str | int | float | bool

_T = TypeVar("_T")


# --------------------------------------------------------------------------- public data


@dataclass(frozen=True, slots=True)
class DemoBrand:
    name: str
    slug: str
    description: str
    logo_url: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DemoCategory:
    """`path` (slugs from the root joined by "/") is unique across the tree, unlike `slug`."""

    path: str
    parent_path: str | None
    name: str
    slug: str
    description: str
    depth: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DemoVariant:
    sku: str
    price: Decimal
    stock: int
    option_values: dict[str, str]


@dataclass(frozen=True, slots=True)
class DemoProduct:
    sku: str
    slug: str
    name: str
    description: str
    status: str
    brand_slug: str
    category_path: str
    attributes: dict[str, AttributeValue]
    options: list[dict[str, Any]]
    currency: str
    variants: tuple[DemoVariant, ...]
    rating_avg: float
    rating_count: int
    popularity: float
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def price_min(self) -> Decimal:
        return min((v.price for v in self.variants), default=Decimal(0))

    @property
    def price_max(self) -> Decimal:
        return max((v.price for v in self.variants), default=Decimal(0))

    @property
    def total_stock(self) -> int:
        return sum(v.stock for v in self.variants)


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    """Categories are listed parents first, so they can be inserted in order."""

    seed: int
    brands: list[DemoBrand]
    categories: list[DemoCategory]
    products: list[DemoProduct]

    @property
    def variant_count(self) -> int:
        return sum(len(p.variants) for p in self.products)

    @property
    def leaf_categories(self) -> list[DemoCategory]:
        parents = {c.parent_path for c in self.categories}
        return [c for c in self.categories if c.path not in parents]


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A leaf category and how its products look.

    `qualifiers` are the words that go between the adjective and the noun of a product name
    (materials for furniture, technologies for electronics); `materials` defaults to them.
    `variants` picks the option scheme (see `_options_for`), `extras` the category-specific
    attributes (see `_EXTRAS`)."""

    name: str
    nouns: tuple[str, ...]
    qualifiers: tuple[str, ...]
    price: tuple[float, float]
    kg: tuple[float, float]
    variants: str = "simple"
    extras: str = ""
    materials: tuple[str, ...] = ()
    shades: tuple[str, ...] = ()
    material_key: str | None = None


@dataclass(frozen=True, slots=True)
class _Child:
    name: str
    code: str
    leaves: tuple[_Leaf, ...]


@dataclass(frozen=True, slots=True)
class _Root:
    name: str
    code: str
    description: str
    focus: str
    adjectives: tuple[str, ...]
    colors: tuple[str, ...]
    warranty: tuple[int, ...]
    uses: tuple[str, ...]
    features: tuple[str, ...]
    material_key: str | None
    children: tuple[_Child, ...]


def _words(text: str) -> tuple[str, ...]:
    """Split a "|"-separated word list; keeps the vocabulary tables short."""
    return tuple(text.split("|")) if text else ()


_FURNITURE = _Root(
    name="Furniture",
    code="FUR",
    description="Chairs, tables, storage and beds for every room of the home.",
    focus="furniture",
    adjectives=_words(
        "Ergonomic|Modern|Classic|Scandinavian|Compact|Minimalist|Rustic|Contemporary|"
        "Mid-Century|Industrial|Cozy|Sturdy"
    ),
    colors=("Black", "White", "Grey", "Natural Oak", "Walnut", "Navy", "Sage Green", "Beige"),
    warranty=(1, 2, 3, 5, 10),
    uses=_words(
        "home offices and study corners|everyday family life|small apartments and studios|"
        "living rooms and lounges|bedrooms and guest rooms"
    ),
    features=_words(
        "tool-free assembly|solid hardwood legs|a scratch-resistant finish|"
        "a removable, washable cover|adjustable levelling feet|reinforced joints|"
        "soft-close mechanisms|sustainably sourced timber"
    ),
    material_key="material",
    children=(
        _Child(
            "Seating",
            "SEA",
            (
                _Leaf(
                    "Office Chairs",
                    ("Office Chair", "Desk Chair", "Task Chair", "Gaming Chair"),
                    ("Mesh", "Leather", "Fabric", "Faux Leather"),
                    (79, 899),
                    (8, 22),
                    "furniture",
                    "chair",
                ),
                _Leaf(
                    "Dining Chairs",
                    ("Dining Chair", "Side Chair", "Bar Stool"),
                    ("Oak", "Beech", "Walnut", "Rattan", "Velvet", "Metal"),
                    (39, 349),
                    (3, 9),
                    "furniture",
                    "chair",
                ),
                _Leaf(
                    "Sofas",
                    ("Sofa", "Sectional Sofa", "Loveseat", "Sofa Bed"),
                    ("Velvet", "Linen", "Leather", "Boucle", "Corduroy"),
                    (299, 2999),
                    (30, 110),
                    "furniture",
                    "sofa",
                ),
                _Leaf(
                    "Armchairs",
                    ("Armchair", "Lounge Chair", "Recliner", "Accent Chair"),
                    ("Velvet", "Leather", "Linen", "Rattan", "Wool"),
                    (149, 1499),
                    (10, 45),
                    "furniture",
                    "chair",
                ),
            ),
        ),
        _Child(
            "Tables",
            "TAB",
            (
                _Leaf(
                    "Desks",
                    ("Desk", "Standing Desk", "Writing Desk", "Computer Desk"),
                    ("Oak", "Walnut", "Bamboo", "Steel", "Birch"),
                    (99, 1299),
                    (15, 60),
                    "furniture",
                    "table",
                ),
                _Leaf(
                    "Dining Tables",
                    ("Dining Table", "Extendable Dining Table", "Kitchen Table"),
                    ("Oak", "Walnut", "Marble", "Pine", "Acacia"),
                    (199, 2499),
                    (25, 90),
                    "furniture",
                    "table",
                ),
                _Leaf(
                    "Coffee Tables",
                    ("Coffee Table", "Side Table", "Nesting Table"),
                    ("Oak", "Glass", "Marble", "Walnut", "Rattan"),
                    (59, 899),
                    (5, 35),
                    "furniture",
                    "table",
                ),
            ),
        ),
        _Child(
            "Storage",
            "STO",
            (
                _Leaf(
                    "Bookcases",
                    ("Bookcase", "Bookshelf", "Shelving Unit", "Wall Shelf"),
                    ("Oak", "Pine", "Walnut", "Birch", "Steel"),
                    (49, 699),
                    (8, 60),
                    "furniture",
                    "shelving",
                ),
                _Leaf(
                    "Wardrobes",
                    ("Wardrobe", "Armoire", "Clothes Rack"),
                    ("Oak", "Pine", "Walnut", "Birch", "Steel"),
                    (129, 1799),
                    (20, 120),
                    "furniture",
                    "shelving",
                ),
                _Leaf(
                    "Dressers",
                    ("Dresser", "Chest of Drawers", "Sideboard"),
                    ("Oak", "Pine", "Walnut", "Mango Wood", "Teak"),
                    (99, 1499),
                    (20, 80),
                    "furniture",
                    "shelving",
                ),
            ),
        ),
        _Child(
            "Bedroom",
            "BED",
            (
                _Leaf(
                    "Beds",
                    ("Bed Frame", "Platform Bed", "Bunk Bed", "Storage Bed"),
                    ("Oak", "Pine", "Upholstered", "Metal", "Walnut"),
                    (199, 2499),
                    (30, 120),
                    "furniture",
                    "bed",
                ),
                _Leaf(
                    "Mattresses",
                    ("Mattress", "Memory Foam Mattress", "Hybrid Mattress", "Mattress Topper"),
                    ("Memory Foam", "Latex", "Pocket Spring", "Organic Cotton"),
                    (149, 1999),
                    (8, 45),
                    "simple",
                    "bed",
                ),
                _Leaf(
                    "Nightstands",
                    ("Nightstand", "Bedside Table", "Bedside Cabinet"),
                    ("Oak", "Pine", "Walnut", "Rattan", "Birch"),
                    (39, 499),
                    (4, 25),
                    "furniture",
                    "table",
                ),
            ),
        ),
    ),
)

_ELECTRONICS = _Root(
    name="Electronics",
    code="ELE",
    description="TVs, computers, audio, phones and cameras from the brands you know.",
    focus="consumer electronics",
    adjectives=_words(
        "Smart|Wireless|Portable|Ultra-Slim|Pro|Compact|High-Performance|Premium|Lightweight|"
        "Next-Gen"
    ),
    colors=("Black", "Silver", "White", "Space Grey", "Midnight Blue", "Graphite"),
    warranty=(1, 2, 3),
    uses=_words(
        "work, study and entertainment|gaming and streaming|travel and commuting|"
        "the living room|creative professionals"
    ),
    features=_words(
        "a long-lasting battery|fast USB-C charging|Bluetooth 5.3|voice assistant support|"
        "an energy-efficient design|automatic software updates|intuitive companion app controls|"
        "low-latency wireless"
    ),
    material_key="material",
    children=(
        _Child(
            "Television & Video",
            "TVV",
            (
                _Leaf(
                    "TVs",
                    ("TV", "Smart TV", "Television"),
                    ("4K QLED", "OLED", "4K UHD", "8K Neo QLED", "Full HD LED", "Mini-LED"),
                    (199, 3999),
                    (5, 35),
                    "simple",
                    "tv",
                    materials=("Plastic", "Aluminium", "Glass"),
                ),
                _Leaf(
                    "Projectors",
                    ("Projector", "Home Cinema Projector", "Mini Projector"),
                    ("4K", "Full HD", "Laser", "Short-Throw"),
                    (89, 2499),
                    (1, 8),
                    "simple",
                    "projector",
                    materials=("Plastic", "Aluminium"),
                ),
                _Leaf(
                    "Streaming Devices",
                    ("Streaming Stick", "Media Player", "Streaming Box"),
                    ("4K HDR", "Full HD", "Voice-Controlled"),
                    (29, 199),
                    (0.05, 0.5),
                    "simple",
                    "streaming",
                    materials=("Plastic",),
                ),
            ),
        ),
        _Child(
            "Computers",
            "COM",
            (
                _Leaf(
                    "Laptops",
                    ("Laptop", "Notebook", "Ultrabook", "2-in-1 Laptop"),
                    ("14-inch", "15.6-inch", "13-inch", "16-inch", "Gaming", "Business"),
                    (399, 3499),
                    (1, 3),
                    "storage",
                    "laptop",
                    materials=("Aluminium", "Magnesium Alloy", "Plastic"),
                ),
                _Leaf(
                    "Monitors",
                    ("Monitor", "Gaming Monitor", "Curved Monitor"),
                    ("27-inch", "24-inch", "32-inch", "34-inch Ultrawide", "4K", "QHD"),
                    (119, 1499),
                    (3, 12),
                    "simple",
                    "monitor",
                    materials=("Plastic", "Aluminium"),
                ),
                _Leaf(
                    "Keyboards",
                    ("Keyboard", "Mechanical Keyboard", "Gaming Keyboard"),
                    ("Wireless", "Backlit", "Low-Profile", "RGB", "Bluetooth"),
                    (19, 249),
                    (0.4, 1.4),
                    "color",
                    "peripheral",
                    materials=("Plastic", "Aluminium"),
                ),
                _Leaf(
                    "Mice",
                    ("Mouse", "Gaming Mouse", "Trackball Mouse", "Ergonomic Mouse"),
                    ("Wireless", "Bluetooth", "Silent", "RGB"),
                    (9, 149),
                    (0.05, 0.2),
                    "color",
                    "peripheral",
                    materials=("Plastic", "Rubber"),
                ),
            ),
        ),
        _Child(
            "Audio",
            "AUD",
            (
                _Leaf(
                    "Headphones",
                    ("Headphones", "Earbuds", "Over-Ear Headphones", "Gaming Headset"),
                    ("Noise-Cancelling", "Wireless", "Bluetooth", "True Wireless", "Studio"),
                    (19, 499),
                    (0.05, 0.4),
                    "color",
                    "headphones",
                    materials=("Plastic", "Aluminium", "Memory Foam"),
                ),
                _Leaf(
                    "Speakers",
                    ("Speaker", "Bluetooth Speaker", "Smart Speaker", "Bookshelf Speaker"),
                    ("Portable", "Waterproof", "Wireless", "Hi-Fi"),
                    (29, 899),
                    (0.3, 12),
                    "color",
                    "speaker",
                    materials=("Plastic", "Fabric", "Wood"),
                ),
                _Leaf(
                    "Soundbars",
                    ("Soundbar", "Dolby Atmos Soundbar"),
                    ("3.1 Channel", "5.1 Channel", "Wireless", "Compact"),
                    (99, 1299),
                    (2, 9),
                    "simple",
                    "speaker",
                    materials=("Plastic", "Fabric", "Aluminium"),
                ),
            ),
        ),
        _Child(
            "Phones & Tablets",
            "PHO",
            (
                _Leaf(
                    "Smartphones",
                    ("Smartphone", "Phone"),
                    ("5G", "Dual-SIM", "Foldable", "Ultra"),
                    (149, 1799),
                    (0.15, 0.3),
                    "storage",
                    "phone",
                    materials=("Glass", "Aluminium", "Titanium"),
                ),
                _Leaf(
                    "Tablets",
                    ("Tablet", "Drawing Tablet", "E-Reader"),
                    ("10-inch", "11-inch", "12.9-inch", "Kids"),
                    (79, 1299),
                    (0.2, 0.8),
                    "storage",
                    "tablet",
                    materials=("Glass", "Aluminium", "Plastic"),
                ),
                _Leaf(
                    "Phone Cases",
                    ("Phone Case", "Wallet Case", "Screen Protector"),
                    ("Silicone", "Leather", "Clear", "Rugged"),
                    (9, 69),
                    (0.02, 0.1),
                    "color",
                    "case",
                ),
            ),
        ),
        _Child(
            "Cameras",
            "CAM",
            (
                _Leaf(
                    "Digital Cameras",
                    ("Camera", "Mirrorless Camera", "DSLR Camera", "Action Camera"),
                    ("Full-Frame", "4K", "Compact", "Vlogging"),
                    (199, 3999),
                    (0.1, 1.2),
                    "simple",
                    "camera",
                    materials=("Magnesium Alloy", "Plastic", "Aluminium"),
                ),
                _Leaf(
                    "Lenses",
                    ("Lens", "Prime Lens", "Zoom Lens", "Wide-Angle Lens"),
                    ("50mm", "85mm", "24-70mm", "70-200mm", "35mm"),
                    (149, 2499),
                    (0.2, 1.5),
                    "simple",
                    "lens",
                    materials=("Glass", "Aluminium", "Plastic"),
                ),
            ),
        ),
    ),
)

_APPAREL = _Root(
    name="Apparel",
    code="APP",
    description="Clothing, shoes and accessories for every season.",
    focus="clothing",
    adjectives=_words(
        "Classic|Slim-Fit|Relaxed|Essential|Vintage|Lightweight|Everyday|Heritage|Performance|"
        "Oversized"
    ),
    colors=_words("Black|White|Navy|Grey|Red|Olive|Sky Blue|Beige|Burgundy|Forest Green"),
    warranty=(),
    uses=_words(
        "everyday wear|the office and weekends|travel and layering|"
        "cold mornings and cool evenings|active days outdoors"
    ),
    features=_words(
        "reinforced seams|a tagless collar|breathable fabric|a modern tailored cut|"
        "recycled materials|a soft brushed finish|deep side pockets|machine-washable fabric"
    ),
    material_key="material",
    children=(
        _Child(
            "Tops",
            "TOP",
            (
                _Leaf(
                    "T-Shirts",
                    ("T-Shirt", "Crew Neck T-Shirt", "V-Neck T-Shirt", "Tee"),
                    ("Cotton", "Organic Cotton", "Linen", "Merino"),
                    (9, 59),
                    (0.15, 0.3),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Shirts",
                    ("Shirt", "Oxford Shirt", "Flannel Shirt", "Polo Shirt"),
                    ("Cotton", "Linen", "Flannel", "Chambray"),
                    (19, 129),
                    (0.2, 0.45),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Sweaters",
                    ("Sweater", "Cardigan", "Jumper", "Turtleneck"),
                    ("Wool", "Merino", "Cashmere", "Cotton"),
                    (29, 249),
                    (0.3, 0.8),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Hoodies",
                    ("Hoodie", "Zip Hoodie", "Sweatshirt"),
                    ("Fleece", "Cotton", "Recycled"),
                    (29, 129),
                    (0.4, 0.9),
                    "apparel",
                    "apparel",
                ),
            ),
        ),
        _Child(
            "Bottoms",
            "BOT",
            (
                _Leaf(
                    "Jeans",
                    ("Jeans", "Skinny Jeans", "Straight Jeans", "Bootcut Jeans"),
                    ("Denim", "Stretch Denim", "Raw Denim"),
                    (29, 199),
                    (0.5, 0.9),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Trousers",
                    ("Trousers", "Chinos", "Cargo Pants"),
                    ("Cotton", "Twill", "Wool", "Linen"),
                    (29, 179),
                    (0.4, 0.8),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Shorts",
                    ("Shorts", "Running Shorts", "Swim Shorts", "Chino Shorts"),
                    ("Cotton", "Linen", "Nylon", "Recycled Polyester"),
                    (14, 79),
                    (0.1, 0.4),
                    "apparel",
                    "apparel",
                ),
            ),
        ),
        _Child(
            "Outerwear",
            "OUT",
            (
                _Leaf(
                    "Jackets",
                    ("Jacket", "Denim Jacket", "Puffer Jacket", "Bomber Jacket"),
                    ("Nylon", "Denim", "Leather", "Down"),
                    (49, 399),
                    (0.5, 1.8),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Coats",
                    ("Coat", "Wool Coat", "Parka", "Trench Coat"),
                    ("Wool", "Down", "Cotton", "Recycled Polyester"),
                    (89, 599),
                    (0.8, 2.5),
                    "apparel",
                    "apparel",
                ),
                _Leaf(
                    "Raincoats",
                    ("Raincoat", "Rain Jacket", "Waterproof Shell"),
                    ("Gore-Tex", "Nylon", "Waxed Cotton"),
                    (49, 349),
                    (0.3, 1.2),
                    "apparel",
                    "apparel",
                ),
            ),
        ),
        _Child(
            "Shoes",
            "SHO",
            (
                _Leaf(
                    "Sneakers",
                    ("Sneaker", "Trainer", "Low-Top Sneaker", "High-Top Sneaker"),
                    ("Leather", "Canvas", "Suede", "Knit"),
                    (39, 229),
                    (0.6, 1.2),
                    "shoes",
                    "shoes",
                ),
                _Leaf(
                    "Boots",
                    ("Boot", "Chelsea Boot", "Hiking Boot", "Ankle Boot"),
                    ("Leather", "Suede", "Nubuck", "Waxed Leather"),
                    (59, 349),
                    (0.9, 2.2),
                    "shoes",
                    "shoes",
                ),
                _Leaf(
                    "Sandals",
                    ("Sandal", "Slide", "Flip-Flop"),
                    ("Leather", "Cork", "Rubber", "EVA"),
                    (15, 129),
                    (0.2, 0.7),
                    "shoes",
                    "shoes",
                ),
                _Leaf(
                    "Running Shoes",
                    ("Running Shoe", "Trail Running Shoe", "Road Running Shoe"),
                    ("Mesh", "Knit", "Gore-Tex"),
                    (59, 249),
                    (0.5, 0.9),
                    "shoes",
                    "shoes",
                ),
            ),
        ),
        _Child(
            "Accessories",
            "ACC",
            (
                _Leaf(
                    "Hats",
                    ("Cap", "Beanie", "Bucket Hat", "Sun Hat"),
                    ("Cotton", "Wool", "Straw", "Recycled Polyester"),
                    (12, 69),
                    (0.05, 0.2),
                    "color",
                    "accessory",
                ),
                _Leaf(
                    "Scarves",
                    ("Scarf", "Wrap", "Snood"),
                    ("Wool", "Cashmere", "Silk", "Cotton"),
                    (15, 199),
                    (0.1, 0.4),
                    "color",
                    "accessory",
                ),
                _Leaf(
                    "Belts",
                    ("Belt", "Leather Belt", "Webbing Belt"),
                    ("Leather", "Canvas", "Suede"),
                    (15, 129),
                    (0.1, 0.3),
                    "color",
                    "accessory",
                ),
            ),
        ),
    ),
)

_KITCHEN = _Root(
    name="Kitchen",
    code="KIT",
    description="Cookware, small appliances, tableware and tools for home cooks.",
    focus="kitchenware",
    adjectives=_words(
        "Professional|Everyday|Heavy-Duty|Classic|Compact|Premium|Essential|Chef's|Stackable|"
        "Artisan"
    ),
    colors=("Black", "White", "Red", "Cream", "Copper", "Sage Green", "Graphite"),
    warranty=(1, 2, 3, 5, 10),
    uses=_words(
        "everyday home cooking|weekend baking and entertaining|busy weeknight dinners|"
        "small kitchens|family meals and gatherings"
    ),
    features=_words(
        "dishwasher-safe parts|an ergonomic, heat-resistant handle|even heat distribution|"
        "a PFAS-free coating|easy cleaning|a space-saving design|food-safe materials|"
        "a limited lifetime guarantee"
    ),
    material_key="material",
    children=(
        _Child(
            "Cookware",
            "CKW",
            (
                _Leaf(
                    "Frying Pans",
                    ("Frying Pan", "Skillet", "Wok", "Griddle Pan"),
                    (
                        "Cast Iron",
                        "Stainless Steel",
                        "Ceramic",
                        "Carbon Steel",
                        "Hard-Anodised Aluminium",
                    ),
                    (19, 249),
                    (0.8, 3.5),
                    "simple",
                    "cookware",
                ),
                _Leaf(
                    "Saucepans",
                    ("Saucepan", "Stockpot", "Saucepan Set"),
                    ("Stainless Steel", "Copper", "Hard-Anodised Aluminium", "Enamelled Steel"),
                    (25, 399),
                    (1, 6),
                    "simple",
                    "cookware",
                ),
                _Leaf(
                    "Dutch Ovens",
                    ("Dutch Oven", "Casserole Dish", "Braiser"),
                    ("Enamelled Cast Iron", "Cast Iron", "Ceramic"),
                    (39, 399),
                    (3, 7),
                    "color",
                    "cookware",
                ),
            ),
        ),
        _Child(
            "Small Appliances",
            "APL",
            (
                _Leaf(
                    "Blenders",
                    ("Blender", "Stand Blender", "Hand Blender", "Smoothie Maker"),
                    ("High-Speed", "1200W", "Personal", "Vacuum"),
                    (29, 599),
                    (1, 6),
                    "color",
                    "appliance",
                    materials=("Stainless Steel", "BPA-Free Plastic", "Glass"),
                ),
                _Leaf(
                    "Coffee Makers",
                    ("Coffee Maker", "Espresso Machine", "Drip Coffee Maker", "French Press"),
                    ("Bean-to-Cup", "Programmable", "Manual", "Single-Serve"),
                    (19, 1299),
                    (0.5, 12),
                    "simple",
                    "appliance",
                    materials=("Stainless Steel", "Plastic", "Glass"),
                ),
                _Leaf(
                    "Toasters",
                    ("Toaster", "2-Slice Toaster", "4-Slice Toaster", "Toaster Oven"),
                    ("Stainless Steel", "Retro", "Wide-Slot"),
                    (19, 249),
                    (1, 8),
                    "color",
                    "appliance",
                    materials=("Stainless Steel", "Plastic"),
                ),
                _Leaf(
                    "Kettles",
                    ("Kettle", "Electric Kettle", "Gooseneck Kettle", "Stovetop Kettle"),
                    ("Glass", "Stainless Steel", "Variable-Temperature"),
                    (15, 179),
                    (0.8, 2),
                    "color",
                    "appliance",
                    materials=("Stainless Steel", "Glass", "Plastic"),
                ),
            ),
        ),
        _Child(
            "Tableware",
            "TBW",
            (
                _Leaf(
                    "Plates",
                    ("Dinner Plate", "Side Plate", "Dinnerware Set", "Serving Platter"),
                    ("Stoneware", "Porcelain", "Bone China", "Melamine"),
                    (9, 199),
                    (0.4, 8),
                    "simple",
                    "tableware",
                ),
                _Leaf(
                    "Glasses",
                    ("Wine Glass", "Tumbler", "Highball Glass", "Champagne Flute"),
                    ("Crystal", "Glass", "Recycled Glass", "Borosilicate Glass"),
                    (9, 129),
                    (0.2, 2),
                    "simple",
                    "tableware",
                ),
                _Leaf(
                    "Mugs",
                    ("Mug", "Travel Mug", "Espresso Cup", "Tea Cup"),
                    ("Ceramic", "Stoneware", "Stainless Steel", "Enamel"),
                    (6, 49),
                    (0.2, 0.6),
                    "color",
                    "tableware",
                ),
            ),
        ),
        _Child(
            "Knives & Tools",
            "KNI",
            (
                _Leaf(
                    "Chef Knives",
                    ("Chef Knife", "Santoku Knife", "Paring Knife", "Knife Block Set"),
                    ("Damascus Steel", "Stainless Steel", "High-Carbon Steel", "Ceramic"),
                    (14, 399),
                    (0.1, 3),
                    "simple",
                    "knife",
                ),
                _Leaf(
                    "Cutting Boards",
                    ("Cutting Board", "Chopping Board", "Butcher Block"),
                    ("Bamboo", "Walnut", "Maple", "Olive Wood", "Composite"),
                    (12, 149),
                    (0.5, 5),
                    "simple",
                    "board",
                ),
                _Leaf(
                    "Utensil Sets",
                    ("Utensil Set", "Spatula Set", "Measuring Cup Set", "Whisk"),
                    ("Silicone", "Stainless Steel", "Bamboo", "Nylon"),
                    (9, 79),
                    (0.1, 1.2),
                    "color",
                    "tableware",
                ),
            ),
        ),
    ),
)

_SPORTS = _Root(
    name="Sports & Outdoors",
    code="SPO",
    description="Gear for camping, fitness, cycling and team sports.",
    focus="outdoor gear",
    adjectives=_words(
        "Lightweight|Ultralight|All-Weather|Pro|Durable|Compact|Adjustable|Performance|"
        "Expedition|Training"
    ),
    colors=("Black", "Orange", "Blue", "Green", "Red", "Yellow", "Grey"),
    warranty=(1, 2, 3, 5),
    uses=_words(
        "weekend adventures|home workouts|daily commutes|training sessions and matches|"
        "multi-day hikes"
    ),
    features=_words(
        "a weather-resistant build|reflective details|a packable design|non-slip grips|"
        "reinforced stitching|quick-release buckles|a carry bag|impact-absorbing padding"
    ),
    material_key="material",
    children=(
        _Child(
            "Camping",
            "CMP",
            (
                _Leaf(
                    "Tents",
                    ("Tent", "Dome Tent", "Backpacking Tent", "Family Tent"),
                    ("Ripstop Nylon", "Polyester", "Canvas"),
                    (59, 899),
                    (1, 15),
                    "simple",
                    "tent",
                ),
                _Leaf(
                    "Sleeping Bags",
                    ("Sleeping Bag", "Mummy Sleeping Bag", "Sleeping Pad"),
                    ("Down", "Synthetic", "Recycled Polyester"),
                    (29, 449),
                    (0.5, 2.5),
                    "simple",
                    "sleeping",
                ),
                _Leaf(
                    "Backpacks",
                    ("Backpack", "Hiking Backpack", "Daypack", "Travel Backpack"),
                    ("Nylon", "Ripstop Nylon", "Canvas", "Recycled Polyester"),
                    (29, 349),
                    (0.4, 2.5),
                    "color",
                    "backpack",
                ),
            ),
        ),
        _Child(
            "Fitness",
            "FIT",
            (
                _Leaf(
                    "Dumbbells",
                    ("Dumbbell", "Adjustable Dumbbell", "Kettlebell", "Dumbbell Set"),
                    ("Cast Iron", "Neoprene", "Rubber-Coated", "Chrome"),
                    (15, 499),
                    (2, 40),
                    "simple",
                    "weights",
                ),
                _Leaf(
                    "Yoga Mats",
                    ("Yoga Mat", "Exercise Mat", "Yoga Block"),
                    ("Natural Rubber", "TPE", "Cork", "PVC"),
                    (15, 129),
                    (0.3, 2.5),
                    "color",
                    "mat",
                ),
                _Leaf(
                    "Treadmills",
                    ("Treadmill", "Exercise Bike", "Rowing Machine", "Elliptical Trainer"),
                    ("Folding", "Smart", "Magnetic", "Compact"),
                    (199, 2999),
                    (25, 120),
                    "simple",
                    "machine",
                    materials=("Steel", "Aluminium"),
                ),
            ),
        ),
        _Child(
            "Cycling",
            "CYC",
            (
                _Leaf(
                    "Bikes",
                    ("Bike", "Road Bike", "Mountain Bike", "Electric Bike", "Hybrid Bike"),
                    ("Aluminium", "Carbon", "Steel", "Titanium"),
                    (299, 4999),
                    (7, 25),
                    "sized",
                    "bike",
                ),
                _Leaf(
                    "Helmets",
                    ("Helmet", "Cycling Helmet", "MIPS Helmet"),
                    ("Polycarbonate", "EPS Foam", "Carbon"),
                    (29, 299),
                    (0.2, 0.5),
                    "sized",
                    "helmet",
                ),
                _Leaf(
                    "Bike Lights",
                    ("Bike Light", "Headlight", "Rear Light", "Bike Light Set"),
                    ("USB-Rechargeable", "LED", "1000-Lumen"),
                    (9, 149),
                    (0.05, 0.4),
                    "simple",
                    "light",
                    materials=("Aluminium", "Plastic"),
                ),
            ),
        ),
        _Child(
            "Team Sports",
            "TEA",
            (
                _Leaf(
                    "Footballs",
                    ("Football", "Soccer Ball", "Training Ball"),
                    ("Synthetic Leather", "PU", "Rubber"),
                    (12, 149),
                    (0.3, 0.5),
                    "simple",
                    "ball",
                ),
                _Leaf(
                    "Basketballs",
                    ("Basketball", "Indoor Basketball", "Outdoor Basketball"),
                    ("Composite Leather", "Rubber", "Leather"),
                    (15, 179),
                    (0.5, 0.7),
                    "simple",
                    "ball",
                ),
                _Leaf(
                    "Tennis Rackets",
                    ("Tennis Racket", "Badminton Racket", "Padel Racket"),
                    ("Graphite", "Carbon Fibre", "Aluminium"),
                    (19, 299),
                    (0.1, 0.4),
                    "simple",
                    "racket",
                ),
            ),
        ),
    ),
)

_BOOKS = _Root(
    name="Books",
    code="BOO",
    description="Fiction, non-fiction, children's books and cookbooks.",
    focus="books",
    adjectives=_words(
        "gripping|moving|beautifully written|award-winning|thought-provoking|heartwarming|"
        "bestselling|richly illustrated"
    ),
    colors=(),
    warranty=(),
    uses=_words(
        "quiet evenings at home|book clubs|long journeys|gifting|curious readers of all ages"
    ),
    features=(),
    material_key=None,
    children=(
        _Child(
            "Fiction",
            "FIC",
            (
                _Leaf(
                    "Novels",
                    ("Novel", "Literary Novel", "Historical Novel"),
                    (),
                    (8, 35),
                    (0.2, 1.2),
                    "simple",
                    "book",
                ),
                _Leaf(
                    "Science Fiction",
                    ("Science Fiction Novel", "Space Opera", "Fantasy Novel"),
                    (),
                    (8, 32),
                    (0.2, 1.2),
                    "simple",
                    "book",
                ),
                _Leaf(
                    "Mysteries",
                    ("Mystery Novel", "Thriller", "Crime Novel", "Detective Story"),
                    (),
                    (8, 30),
                    (0.2, 1.0),
                    "simple",
                    "book",
                ),
            ),
        ),
        _Child(
            "Non-Fiction",
            "NON",
            (
                _Leaf(
                    "Biographies",
                    ("Biography", "Memoir", "Autobiography"),
                    (),
                    (10, 40),
                    (0.3, 1.2),
                    "simple",
                    "book",
                ),
                _Leaf(
                    "History",
                    ("History Book", "Illustrated History", "Chronicle"),
                    (),
                    (12, 49),
                    (0.3, 1.5),
                    "simple",
                    "book",
                ),
                _Leaf(
                    "Popular Science",
                    ("Popular Science Book", "Science Guide", "Field Guide"),
                    (),
                    (10, 45),
                    (0.3, 1.3),
                    "simple",
                    "book",
                ),
            ),
        ),
        _Child(
            "Children's Books",
            "CHI",
            (
                _Leaf(
                    "Picture Books",
                    ("Picture Book", "Board Book", "Bedtime Storybook"),
                    (),
                    (6, 25),
                    (0.15, 0.8),
                    "simple",
                    "book",
                ),
                _Leaf(
                    "Young Adult",
                    ("Young Adult Novel", "Coming-of-Age Novel", "Adventure Novel"),
                    (),
                    (8, 25),
                    (0.2, 0.9),
                    "simple",
                    "book",
                ),
            ),
        ),
        _Child(
            "Cookbooks",
            "CKB",
            (
                _Leaf(
                    "Baking",
                    ("Baking Book", "Bread Cookbook", "Dessert Cookbook"),
                    (),
                    (12, 45),
                    (0.5, 1.8),
                    "simple",
                    "book",
                ),
                _Leaf(
                    "World Cuisine",
                    ("Cookbook", "Italian Cookbook", "Japanese Cookbook", "Vegetarian Cookbook"),
                    (),
                    (12, 49),
                    (0.5, 1.8),
                    "simple",
                    "book",
                ),
            ),
        ),
    ),
)

_TOYS = _Root(
    name="Toys",
    code="TOY",
    description="Building sets, games, puzzles, dolls and outdoor play.",
    focus="toys and games",
    adjectives=_words("Creative|Educational|Colorful|Classic|Deluxe|Junior|Mini|Interactive"),
    colors=("Multicolor", "Red", "Blue", "Pink", "Yellow", "Green"),
    warranty=(1, 2),
    uses=_words(
        "rainy afternoons|family game nights|birthdays and holidays|learning through play|"
        "the playroom and the garden"
    ),
    features=_words(
        "child-safe, non-toxic materials|rounded edges|an illustrated instruction booklet|"
        "a sturdy storage box|bright, fade-resistant colours|pieces compatible with other sets"
    ),
    material_key="material",
    children=(
        _Child(
            "Building Sets",
            "BLD",
            (
                _Leaf(
                    "Brick Sets",
                    ("Building Set", "Brick Set", "Construction Kit"),
                    ("Castle", "Space Station", "City", "Pirate Ship", "Race Car", "Dinosaur"),
                    (9, 299),
                    (0.2, 3),
                    "simple",
                    "building",
                    materials=("ABS Plastic",),
                ),
                _Leaf(
                    "Magnetic Tiles",
                    ("Magnetic Tile Set", "Marble Run", "Magnetic Building Set"),
                    ("Rainbow", "Glow-in-the-Dark", "Starter", "Jumbo"),
                    (19, 149),
                    (0.5, 3),
                    "simple",
                    "building",
                    materials=("ABS Plastic", "Wood"),
                ),
            ),
        ),
        _Child(
            "Games & Puzzles",
            "GAM",
            (
                _Leaf(
                    "Board Games",
                    ("Board Game", "Strategy Game", "Family Game", "Party Game"),
                    ("Cooperative", "Classic", "Travel", "Deluxe Edition"),
                    (12, 99),
                    (0.3, 2.5),
                    "simple",
                    "game",
                    materials=("Cardboard", "Wood"),
                ),
                _Leaf(
                    "Jigsaw Puzzles",
                    ("Jigsaw Puzzle", "Puzzle", "3D Puzzle"),
                    ("1000-Piece", "500-Piece", "Landscape", "Wooden"),
                    (9, 59),
                    (0.3, 1.2),
                    "simple",
                    "puzzle",
                    materials=("Cardboard", "Wood"),
                ),
                _Leaf(
                    "Card Games",
                    ("Card Game", "Trading Card Deck", "Playing Cards"),
                    ("Family", "Strategy", "Party"),
                    (5, 39),
                    (0.1, 0.5),
                    "simple",
                    "game",
                    materials=("Cardboard",),
                ),
            ),
        ),
        _Child(
            "Dolls & Figures",
            "DOL",
            (
                _Leaf(
                    "Dolls",
                    ("Doll", "Fashion Doll", "Baby Doll", "Dollhouse"),
                    ("Classic", "Talking", "Rag", "Wooden"),
                    (9, 199),
                    (0.2, 8),
                    "simple",
                    "toy",
                    materials=("Vinyl", "Fabric", "Wood"),
                ),
                _Leaf(
                    "Action Figures",
                    ("Action Figure", "Figure Set", "Collectible Figure"),
                    ("Superhero", "Robot", "Dinosaur", "Knight", "Astronaut"),
                    (7, 89),
                    (0.1, 1),
                    "simple",
                    "toy",
                    materials=("PVC", "ABS Plastic"),
                ),
                _Leaf(
                    "Plush Toys",
                    ("Plush Toy", "Teddy Bear", "Stuffed Animal", "Plush Bunny"),
                    ("Cuddly", "Giant", "Soft", "Mini"),
                    (8, 79),
                    (0.1, 1.5),
                    "color",
                    "toy",
                    materials=("Polyester Plush", "Organic Cotton", "Faux Fur"),
                ),
            ),
        ),
        _Child(
            "Outdoor Play",
            "OPL",
            (
                _Leaf(
                    "Scooters",
                    ("Scooter", "Kick Scooter", "Balance Bike"),
                    ("3-Wheel", "Foldable", "Light-Up"),
                    (29, 199),
                    (2, 6),
                    "color",
                    "ride",
                    materials=("Aluminium", "Steel", "Wood"),
                ),
                _Leaf(
                    "Kites",
                    ("Kite", "Stunt Kite", "Foam Glider"),
                    ("Rainbow", "Dual-Line", "Delta"),
                    (9, 79),
                    (0.1, 0.6),
                    "simple",
                    "toy",
                    materials=("Ripstop Nylon", "Polyester"),
                ),
            ),
        ),
    ),
)

_BEAUTY = _Root(
    name="Beauty",
    code="BEA",
    description="Skincare, hair care, makeup and fragrance.",
    focus="beauty products",
    adjectives=_words(
        "Hydrating|Gentle|Nourishing|Daily|Intensive|Brightening|Soothing|Radiant|Lightweight|"
        "Long-Lasting"
    ),
    colors=(),
    warranty=(),
    uses=_words(
        "morning and evening routines|sensitive skin|everyday use|travel and the gym bag|"
        "a little self-care"
    ),
    features=_words(
        "a fragrance-free formula|dermatologist-tested ingredients|recyclable packaging|"
        "a non-greasy finish|a vegan, cruelty-free formula|no parabens or sulfates"
    ),
    material_key="key_ingredient",
    children=(
        _Child(
            "Skincare",
            "SKI",
            (
                _Leaf(
                    "Moisturizers",
                    ("Moisturizer", "Face Cream", "Night Cream", "Day Cream"),
                    ("Hyaluronic Acid", "Vitamin C", "Aloe Vera", "Shea Butter", "Ceramide"),
                    (8, 89),
                    (0.05, 0.3),
                    "simple",
                    "skincare",
                ),
                _Leaf(
                    "Cleansers",
                    ("Cleanser", "Face Wash", "Micellar Water", "Cleansing Balm"),
                    ("Green Tea", "Charcoal", "Salicylic Acid", "Oat", "Rose Water"),
                    (6, 49),
                    (0.1, 0.5),
                    "simple",
                    "skincare",
                ),
                _Leaf(
                    "Serums",
                    ("Serum", "Face Oil", "Eye Serum"),
                    ("Retinol", "Vitamin C", "Hyaluronic Acid", "Peptide", "Niacinamide"),
                    (12, 129),
                    (0.03, 0.15),
                    "simple",
                    "skincare",
                ),
                _Leaf(
                    "Sunscreens",
                    ("Sunscreen", "SPF 50 Sunscreen", "Mineral Sunscreen", "Sun Lotion"),
                    ("Zinc Oxide", "Aloe Vera", "Vitamin E"),
                    (8, 49),
                    (0.05, 0.4),
                    "simple",
                    "skincare",
                ),
            ),
        ),
        _Child(
            "Hair Care",
            "HAI",
            (
                _Leaf(
                    "Shampoos",
                    ("Shampoo", "Dry Shampoo", "Clarifying Shampoo"),
                    ("Argan Oil", "Coconut", "Tea Tree", "Keratin", "Biotin"),
                    (5, 39),
                    (0.2, 1.1),
                    "simple",
                    "haircare",
                ),
                _Leaf(
                    "Conditioners",
                    ("Conditioner", "Hair Mask", "Leave-In Conditioner"),
                    ("Argan Oil", "Coconut", "Shea Butter", "Keratin", "Avocado Oil"),
                    (5, 45),
                    (0.2, 1.1),
                    "simple",
                    "haircare",
                ),
                _Leaf(
                    "Hair Dryers",
                    ("Hair Dryer", "Hair Straightener", "Curling Iron", "Hot Air Brush"),
                    ("Ionic", "Ceramic", "Tourmaline", "Cordless"),
                    (19, 449),
                    (0.3, 1),
                    "simple",
                    "hair_tool",
                    materials=("Ceramic", "Plastic", "Titanium"),
                    material_key="material",
                ),
            ),
        ),
        _Child(
            "Makeup",
            "MAK",
            (
                _Leaf(
                    "Lipsticks",
                    ("Lipstick", "Lip Gloss", "Liquid Lipstick", "Lip Balm"),
                    ("Matte", "Satin", "Velvet", "Tinted"),
                    (6, 45),
                    (0.01, 0.05),
                    "shade",
                    "makeup",
                    materials=("Vitamin E", "Jojoba Oil", "Beeswax", "Shea Butter"),
                    shades=("Nude", "Rose", "Berry", "Coral", "Ruby", "Mauve", "Plum"),
                ),
                _Leaf(
                    "Foundations",
                    ("Foundation", "Concealer", "BB Cream", "Tinted Moisturizer"),
                    ("Matte", "Dewy", "Full-Coverage", "Lightweight"),
                    (8, 59),
                    (0.03, 0.15),
                    "shade",
                    "makeup",
                    materials=("Hyaluronic Acid", "SPF 30", "Niacinamide"),
                    shades=("Fair", "Light", "Medium", "Tan", "Deep", "Rich"),
                ),
                _Leaf(
                    "Mascaras",
                    ("Mascara", "Eyeliner", "Brow Pencil"),
                    ("Waterproof", "Volumizing", "Lengthening", "Smudge-Proof"),
                    (5, 35),
                    (0.01, 0.05),
                    "simple",
                    "makeup",
                    materials=("Keratin", "Castor Oil", "Beeswax"),
                ),
            ),
        ),
        _Child(
            "Fragrance",
            "FRA",
            (
                _Leaf(
                    "Perfumes",
                    ("Perfume", "Eau de Parfum", "Body Mist"),
                    ("Floral", "Citrus", "Vanilla", "Amber", "Jasmine"),
                    (19, 199),
                    (0.1, 0.5),
                    "simple",
                    "fragrance",
                    materials=("Bergamot", "Jasmine", "Sandalwood", "Vanilla", "Rose"),
                ),
                _Leaf(
                    "Colognes",
                    ("Cologne", "Eau de Toilette", "Aftershave"),
                    ("Woody", "Fresh", "Citrus", "Oud", "Aquatic"),
                    (19, 179),
                    (0.1, 0.5),
                    "simple",
                    "fragrance",
                    materials=("Cedarwood", "Vetiver", "Bergamot", "Sea Salt", "Leather"),
                ),
            ),
        ),
    ),
)

_ROOTS: tuple[_Root, ...] = (
    _FURNITURE,
    _ELECTRONICS,
    _APPAREL,
    _KITCHEN,
    _SPORTS,
    _BOOKS,
    _TOYS,
    _BEAUTY,
)

# Name and the codes of the root categories the brand sells in.
_BRANDS: tuple[tuple[str, str], ...] = (
    ("Samsung", "ELE KIT"),
    ("Sony", "ELE"),
    ("LG", "ELE KIT"),
    ("Philips", "ELE KIT BEA"),
    ("Logitech", "ELE"),
    ("Bosch", "KIT"),
    ("Voltari", "ELE"),
    ("Lumeon", "ELE"),
    ("Kestrel Audio", "ELE"),
    ("Quantix", "ELE"),
    ("Arcwave", "ELE"),
    ("Brightline", "ELE"),
    ("IKEA", "FUR KIT"),
    ("Herman Miller", "FUR"),
    ("Nordhaven", "FUR"),
    ("Oakridge Living", "FUR"),
    ("Fjordline", "FUR"),
    ("Larchwood", "FUR"),
    ("Hearthstone Home", "FUR KIT"),
    ("Atelier Nova", "FUR"),
    ("Westbrook & Lane", "FUR"),
    ("Nike", "APP SPO"),
    ("Adidas", "APP SPO"),
    ("Patagonia", "APP SPO"),
    ("Uniqlo", "APP"),
    ("Northpeak", "APP SPO"),
    ("Urban Thread", "APP"),
    ("Saltmarsh", "APP"),
    ("Cobalt & Co", "APP"),
    ("Wildfern", "APP SPO"),
    ("Meridian Knit", "APP"),
    ("KitchenAid", "KIT"),
    ("Copperleaf", "KIT"),
    ("Emberline", "KIT"),
    ("Maison Fourneau", "KIT"),
    ("Greystone Kitchen", "KIT"),
    ("Summit Trail", "SPO"),
    ("Ridgeback Outdoor", "SPO"),
    ("Velocita", "SPO"),
    ("Trailforge", "SPO"),
    ("Ironpeak Fitness", "SPO"),
    ("Harbor Lane Press", "BOO"),
    ("Blue Quill Books", "BOO"),
    ("Inkwell House", "BOO"),
    ("Lantern Publishing", "BOO"),
    ("Marigold Press", "BOO"),
    ("LEGO", "TOY"),
    ("Hasbro", "TOY"),
    ("Brickwell", "TOY"),
    ("Tinker Bay", "TOY"),
    ("Puzzleworks", "TOY"),
    ("Little Comet", "TOY"),
    ("Velvet Rose", "BEA"),
    ("Pure Alchemy", "BEA"),
    ("Aurora Skin", "BEA"),
    ("Solstice Beauty", "BEA"),
    ("Dr. Fern", "BEA"),
    ("Maison Lumiere", "BEA"),
)

_BRAND_TRAITS = (
    "thoughtful design and honest prices",
    "durable products built to be repaired",
    "clean lines and quality materials",
    "relentless innovation",
    "sustainable sourcing",
    "friendly customer service",
    "award-winning engineering",
    "timeless style",
)

_SERIES = ("Pro", "Plus", "Max", "Lite", "Mini", "X2", "S500", "One", "Air", "Elite", "II")

_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
_SHOE_SIZES = ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12", "13")
_STORAGE = ("64 GB", "128 GB", "256 GB", "512 GB", "1 TB")

_TITLE_ADJECTIVES = (
    "Silent",
    "Hidden",
    "Last",
    "Golden",
    "Broken",
    "Forgotten",
    "Midnight",
    "Distant",
    "Burning",
    "Secret",
    "Wild",
    "Lost",
    "Little",
    "Crimson",
    "Endless",
    "Quiet",
)
_TITLE_NOUNS = (
    "Harbor",
    "Garden",
    "Kingdom",
    "River",
    "Letter",
    "Orchard",
    "Lighthouse",
    "Empire",
    "Winter",
    "Map",
    "Island",
    "Kitchen",
    "Forest",
    "Station",
    "Summer",
    "Bridge",
    "Compass",
    "Library",
)
_FIRST_NAMES = (
    "Anna",
    "James",
    "Maria",
    "David",
    "Sofia",
    "Liam",
    "Elena",
    "Noah",
    "Grace",
    "Omar",
    "Hannah",
    "Kenji",
    "Clara",
    "Mateo",
    "Ruth",
    "Samuel",
)
_LAST_NAMES = (
    "Whitaker",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Castillo",
    "Brennan",
    "Nakamura",
    "Fischer",
    "Hughes",
    "Rossi",
    "Adeyemi",
    "Kowalski",
    "Marsh",
    "Delacroix",
    "Patel",
    "Sullivan",
)

_CATEGORY_BLURBS = (
    "Browse our selection of {lower}, from everyday essentials to premium picks.",
    "{name} from trusted brands, chosen for quality and value.",
    "Everything in {lower}, with fast delivery and easy returns.",
    "Discover {lower} for every budget and style.",
)

_PLURAL_SAME = frozenset(
    {"Jeans", "Shorts", "Trousers", "Chinos", "Pants", "Headphones", "Earbuds", "Cards"}
)
_PLURAL_IRREGULAR = {
    "Knife": "Knives",
    "Shelf": "Shelves",
    "Scarf": "Scarves",
    "Mouse": "Mice",
    "Chest of Drawers": "Chests of Drawers",
    "Eau de Parfum": "Eaux de Parfum",
    "Eau de Toilette": "Eaux de Toilette",
}


def _plural(noun: str) -> str:
    if noun in _PLURAL_IRREGULAR:
        return _PLURAL_IRREGULAR[noun]
    head, _, last = noun.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last in _PLURAL_SAME:
        return noun
    if last in _PLURAL_IRREGULAR:
        return prefix + _PLURAL_IRREGULAR[last]
    if last.endswith(("s", "x", "ch", "sh")):
        return f"{noun}es"
    if last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{noun[:-1]}ies"
    return f"{noun}s"


# --------------------------------------------------------------------------- attributes


def _r(rng: random.Random, low: float, high: float, digits: int = 1) -> float:
    return round(rng.uniform(low, high), digits)


_Extras = Callable[[random.Random], dict[str, AttributeValue]]

_EXTRAS: dict[str, _Extras] = {
    "chair": lambda r: {
        "seat_height_cm": _int(r, 42, 52),
        "max_load_kg": _pick(r, (110, 120, 136, 150)),
        "adjustable_height": r.random() < 0.5,
    },
    "sofa": lambda r: {
        "seats": _int(r, 2, 4),
        "width_cm": r.randrange(160, 281, 5),
        "removable_covers": r.random() < 0.6,
    },
    "table": lambda r: {
        "width_cm": r.randrange(40, 221, 10),
        "depth_cm": r.randrange(40, 101, 5),
        "height_cm": r.randrange(45, 121, 5),
        "assembly_required": r.random() < 0.8,
    },
    "shelving": lambda r: {
        "width_cm": r.randrange(40, 201, 10),
        "height_cm": r.randrange(60, 221, 10),
        "shelves": _int(r, 2, 6),
        "assembly_required": True,
    },
    "bed": lambda r: {
        "bed_size": _pick(r, ("Twin", "Full", "Queen", "King")),
        "firmness": _pick(r, ("Soft", "Medium", "Firm")),
    },
    "tv": lambda r: {
        "screen_size_in": _pick(r, (32, 43, 50, 55, 65, 75, 85)),
        "resolution": _pick(r, ("4K", "4K", "8K", "1080p")),
        "refresh_rate_hz": _pick(r, (60, 120, 144)),
        "smart_tv": r.random() < 0.9,
        "hdr": r.random() < 0.8,
    },
    "projector": lambda r: {
        "brightness_lumens": r.randrange(500, 4001, 100),
        "resolution": _pick(r, ("1080p", "4K")),
        "throw_ratio": _r(r, 0.3, 1.6, 2),
    },
    "streaming": lambda r: {
        "resolution": _pick(r, ("1080p", "4K")),
        "voice_remote": r.random() < 0.7,
        "wifi": _pick(r, ("Wi-Fi 5", "Wi-Fi 6")),
    },
    "laptop": lambda r: {
        "screen_size_in": _pick(r, (13.3, 14.0, 15.6, 16.0)),
        "ram_gb": _pick(r, (8, 16, 32, 64)),
        "processor": _pick(r, ("Intel Core i5", "Intel Core i7", "AMD Ryzen 7", "ARM 10-core")),
        "battery_hours": _int(r, 6, 22),
        "touchscreen": r.random() < 0.3,
    },
    "monitor": lambda r: {
        "screen_size_in": _pick(r, (24, 27, 32, 34)),
        "resolution": _pick(r, ("1080p", "1440p", "4K")),
        "refresh_rate_hz": _pick(r, (60, 75, 144, 165, 240)),
        "panel": _pick(r, ("IPS", "VA", "OLED")),
    },
    "peripheral": lambda r: {
        "wireless": r.random() < 0.6,
        "connectivity": _pick(r, ("USB-C", "Bluetooth", "2.4 GHz", "USB-A")),
        "battery_months": _int(r, 3, 24),
    },
    "headphones": lambda r: {
        "wireless": r.random() < 0.8,
        "noise_cancelling": r.random() < 0.5,
        "battery_hours": _int(r, 5, 60),
        "driver_mm": _pick(r, (10, 12, 40, 50)),
    },
    "speaker": lambda r: {
        "wireless": r.random() < 0.7,
        "power_w": _pick(r, (10, 20, 40, 60, 100, 200, 400)),
        "waterproof": r.random() < 0.4,
    },
    "phone": lambda r: {
        "screen_size_in": _pick(r, (6.1, 6.4, 6.7, 6.9)),
        "camera_mp": _pick(r, (12, 48, 50, 108, 200)),
        "five_g": r.random() < 0.9,
        "battery_mah": r.randrange(3500, 5501, 100),
    },
    "tablet": lambda r: {
        "screen_size_in": _pick(r, (8.3, 10.2, 10.9, 11.0, 12.9)),
        "cellular": r.random() < 0.3,
        "stylus_support": r.random() < 0.6,
    },
    "case": lambda r: {
        "compatible_with": _pick(r, ("6.1-inch phones", "6.7-inch phones", "Most phones")),
        "drop_tested_m": _pick(r, (1.2, 2.0, 3.0)),
        "magnetic": r.random() < 0.4,
    },
    "camera": lambda r: {
        "megapixels": _pick(r, (20, 24, 33, 45, 61)),
        "sensor": _pick(r, ("Full Frame", "APS-C", "Micro Four Thirds", "1-inch")),
        "video": _pick(r, ("4K 30p", "4K 60p", "8K 24p")),
        "weather_sealed": r.random() < 0.5,
    },
    "lens": lambda r: {
        "focal_length_mm": _pick(r, (24, 35, 50, 85, 135)),
        "max_aperture": _pick(r, ("f/1.4", "f/1.8", "f/2.8", "f/4")),
        "image_stabilization": r.random() < 0.5,
    },
    "apparel": lambda r: {
        "fit": _pick(r, ("Slim", "Regular", "Relaxed")),
        "gender": _pick(r, ("Men", "Women", "Unisex")),
        "care": _pick(r, ("Machine wash cold", "Hand wash", "Dry clean only")),
    },
    "shoes": lambda r: {
        "gender": _pick(r, ("Men", "Women", "Unisex")),
        "sole": _pick(r, ("Rubber", "EVA foam", "Vibram")),
        "waterproof": r.random() < 0.3,
    },
    "accessory": lambda r: {
        "gender": _pick(r, ("Men", "Women", "Unisex")),
        "one_size": r.random() < 0.7,
    },
    "cookware": lambda r: {
        "diameter_cm": _pick(r, (20, 24, 26, 28, 30)),
        "dishwasher_safe": r.random() < 0.5,
        "induction_ready": r.random() < 0.7,
        "oven_safe_c": _pick(r, (180, 220, 260)),
    },
    "appliance": lambda r: {
        "power_w": r.randrange(600, 2201, 100),
        "capacity_l": _r(r, 0.5, 2.0),
        "voltage": 120,
    },
    "tableware": lambda r: {
        "pieces": _pick(r, (1, 2, 4, 6, 12)),
        "dishwasher_safe": r.random() < 0.8,
        "microwave_safe": r.random() < 0.6,
    },
    "knife": lambda r: {
        "blade_length_cm": _pick(r, (9, 13, 15, 18, 20, 23)),
        "dishwasher_safe": False,
        "hrc_hardness": _int(r, 56, 62),
    },
    "board": lambda r: {
        "width_cm": r.randrange(25, 51, 5),
        "length_cm": r.randrange(35, 61, 5),
        "reversible": r.random() < 0.5,
    },
    "tent": lambda r: {
        "capacity_persons": _int(r, 1, 6),
        "season": _pick(r, ("3-season", "4-season")),
        "waterproof_rating_mm": r.randrange(1500, 5001, 500),
    },
    "sleeping": lambda r: {
        "comfort_temp_c": _int(r, -10, 15),
        "length_cm": _pick(r, (185, 200, 220)),
    },
    "backpack": lambda r: {
        "capacity_l": _pick(r, (18, 22, 28, 35, 45, 65)),
        "laptop_sleeve": r.random() < 0.5,
        "waterproof": r.random() < 0.4,
    },
    "weights": lambda r: {
        "max_weight_kg": _pick(r, (5, 10, 20, 24, 32, 40)),
        "adjustable": r.random() < 0.4,
    },
    "mat": lambda r: {
        "thickness_mm": _pick(r, (3, 4, 5, 6, 8, 10)),
        "non_slip": True,
        "length_cm": _pick(r, (173, 183, 200)),
    },
    "machine": lambda r: {
        "max_user_weight_kg": _pick(r, (100, 120, 136, 150)),
        "foldable": r.random() < 0.5,
        "programs": _int(r, 6, 36),
    },
    "bike": lambda r: {
        "wheel_size_in": _pick(r, (26.0, 27.5, 28.0, 29.0)),
        "gears": _pick(r, (1, 8, 11, 12, 21, 24)),
        "electric": r.random() < 0.2,
    },
    "helmet": lambda r: {"mips": r.random() < 0.5, "vents": _int(r, 8, 24)},
    "light": lambda r: {
        "lumens": _pick(r, (100, 300, 500, 800, 1000)),
        "battery_hours": _int(r, 2, 20),
        "waterproof": True,
    },
    "ball": lambda r: {"size": _pick(r, (3, 4, 5, 6, 7)), "indoor": r.random() < 0.4},
    "racket": lambda r: {
        "head_size_sq_in": _pick(r, (95, 98, 100, 105)),
        "strung": r.random() < 0.7,
        "grip_size": _pick(r, ("1", "2", "3", "4")),
    },
    "book": lambda r: {
        "author": f"{_pick(r, _FIRST_NAMES)} {_pick(r, _LAST_NAMES)}",
        "pages": _int(r, 32, 720),
        "format": _pick(r, ("Hardcover", "Paperback", "Paperback")),
        "language": _pick(r, ("English", "English", "English", "Spanish", "French")),
        "publication_year": _int(r, 1995, 2025),
        "isbn": f"978{r.randrange(10**9, 10**10)}",
    },
    "building": lambda r: {
        "pieces": r.randrange(50, 3001, 10),
        "age_min": _pick(r, (3, 4, 6, 8, 10, 12)),
    },
    "game": lambda r: {
        "players_min": _int(r, 1, 2),
        "players_max": _int(r, 4, 8),
        "playing_time_min": _pick(r, (15, 30, 45, 60, 90)),
        "age_min": _pick(r, (6, 8, 10, 12, 14)),
    },
    "puzzle": lambda r: {"pieces": _pick(r, (100, 300, 500, 1000, 1500, 2000)), "age_min": 8},
    "toy": lambda r: {
        "age_min": _pick(r, (0, 1, 3, 4, 6, 8)),
        "batteries_required": r.random() < 0.25,
    },
    "ride": lambda r: {
        "age_min": _pick(r, (2, 3, 5, 8)),
        "max_load_kg": _pick(r, (20, 50, 80, 100)),
        "foldable": r.random() < 0.6,
    },
    "skincare": lambda r: {
        "volume_ml": _pick(r, (15, 30, 50, 100, 150, 200)),
        "skin_type": _pick(r, ("All", "Dry", "Oily", "Combination", "Sensitive")),
        "vegan": r.random() < 0.5,
        "fragrance_free": r.random() < 0.4,
    },
    "haircare": lambda r: {
        "volume_ml": _pick(r, (100, 250, 300, 500, 1000)),
        "hair_type": _pick(r, ("All", "Curly", "Fine", "Dry", "Color-Treated")),
        "sulfate_free": r.random() < 0.6,
    },
    "hair_tool": lambda r: {
        "power_w": _pick(r, (1200, 1600, 1800, 2000, 2200)),
        "heat_settings": _int(r, 2, 5),
        "warranty_years": _pick(r, (1, 2, 3)),
    },
    "makeup": lambda r: {
        "finish": _pick(r, ("Matte", "Satin", "Dewy", "Natural")),
        "vegan": r.random() < 0.5,
        "cruelty_free": r.random() < 0.8,
    },
    "fragrance": lambda r: {
        "volume_ml": _pick(r, (30, 50, 75, 100)),
        "concentration": _pick(r, ("Eau de Parfum", "Eau de Toilette", "Parfum", "Cologne")),
    },
}


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True, slots=True)
class _LeafContext:
    """A leaf category with everything a product of it needs, resolved once."""

    root: _Root
    leaf: _Leaf
    path: str
    sku_prefix: str
    brands: tuple[tuple[str, str], ...]
    materials: tuple[str, ...]
    material_key: str | None
    plurals: dict[str, str]


def _pick(rng: random.Random, values: Sequence[_T]) -> _T:
    """`rng.choice` without its overhead: generating 100,000 products makes millions of picks."""
    return values[int(rng.random() * len(values))]


def _int(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high], like `rng.randint` but several times cheaper."""
    return low + int(rng.random() * (high - low + 1))


def _sample(rng: random.Random, values: Sequence[_T], count: int) -> list[_T]:
    """`count` distinct values in draw order (`rng.sample` is slow for such small draws)."""
    indexes: list[int] = []
    while len(indexes) < count:
        index = int(rng.random() * len(values))
        if index not in indexes:
            indexes.append(index)
    return [values[i] for i in indexes]


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _base_price_cents(rng: random.Random, low: float, high: float) -> int:
    """Log-uniform in the leaf's range, ending the way shop prices do (.99, .95, .49, .00)."""
    amount = math.exp(rng.uniform(math.log(low), math.log(high)))
    whole = max(1, int(amount))
    if whole >= 100:
        whole = whole - whole % 10 + 9
    return whole * 100 + _pick(rng, (99, 99, 99, 95, 49, 0))


def _stock(rng: random.Random) -> int:
    return 0 if rng.random() < 0.08 else 1 + int(rng.random() * 200)


def _contiguous(rng: random.Random, values: tuple[str, ...], low: int, high: int) -> list[str]:
    count = _int(rng, low, min(high, len(values)))
    start = _int(rng, 0, len(values) - count)
    return list(values[start : start + count])


def _options_for(rng: random.Random, kind: str, ctx: _LeafContext) -> list[tuple[str, list[str]]]:
    """The product's options as (name, values) pairs, for the leaf's variant scheme."""
    colors = ctx.root.colors
    if kind == "apparel":
        sizes = _contiguous(rng, _SIZES, 3, 6)
        if rng.random() < 0.75:
            return [("Size", sizes), ("Color", _sample(rng, colors, _int(rng, 2, 3)))]
        return [("Size", sizes)]
    if kind == "shoes":
        sizes = _contiguous(rng, _SHOE_SIZES, 4, 8)
        if rng.random() < 0.4:
            return [("Size", sizes), ("Color", _sample(rng, colors, 2))]
        return [("Size", sizes)]
    if kind == "sized":
        return [("Size", ["S", "M", "L", "XL"] if rng.random() < 0.5 else ["S", "M", "L"])]
    if kind == "storage":
        storage = _contiguous(rng, _STORAGE, 2, 3)
        if rng.random() < 0.5:
            return [("Storage", storage), ("Color", _sample(rng, colors, 2))]
        return [("Storage", storage)]
    if kind == "shade":
        shades = ctx.leaf.shades
        picked = set(_sample(rng, shades, _int(rng, 3, min(6, len(shades)))))
        return [("Shade", [s for s in shades if s in picked])]
    if kind == "color" and colors and rng.random() < 0.6:
        return [("Color", _sample(rng, colors, _int(rng, 2, 4)))]
    if kind == "furniture" and colors and rng.random() < 0.35:
        return [("Color", _sample(rng, colors, _int(rng, 2, 3)))]
    return []


@functools.cache
def _sku_suffix(value: str) -> str:
    """The SKU suffix of an option value, in characters the SKU pattern accepts:
    "Sky Blue" -> "-SKYBLUE", "7.5" -> "-7.5"."""
    return "-" + "".join(ch for ch in value.upper() if ch.isalnum() or ch == ".")


def _variants(
    rng: random.Random, sku: str, base_cents: int, options: list[tuple[str, list[str]]]
) -> tuple[DemoVariant, ...]:
    """One variant per combination of option values, or a single default variant.

    The base price is the cheapest variant's: larger storage costs more, and some apparel
    charges a little extra for XL and XXL."""
    if not options:
        return (DemoVariant(sku, _money(base_cents), _stock(rng), {}),)
    upsize = rng.random() < 0.3
    choices: list[list[tuple[str, str, int]]] = []
    for name, values in options:
        if name == "Storage":
            step = base_cents // 800 * 100 + 5000
            extra = [i * step for i in range(len(values))]
        elif name == "Size" and upsize:
            extra = [{"XL": 200, "XXL": 400}.get(v, 0) for v in values]
        else:
            extra = [0] * len(values)
        choices.append([(v, _sku_suffix(v), e) for v, e in zip(values, extra, strict=True)])
    names = [name for name, _ in options]
    variants = []
    for combo in itertools.product(*choices):
        variants.append(
            DemoVariant(
                sku=sku + "".join(suffix for _, suffix, _ in combo),
                price=_money(base_cents + sum(e for _, _, e in combo)),
                stock=_stock(rng),
                option_values={
                    name: value for name, (value, _, _) in zip(names, combo, strict=True)
                },
            )
        )
    return tuple(variants)


def _unique_slug(name: str, taken: set[str], counters: dict[str, int]) -> str:
    """Like `kit.crud.unique_slug` (-2, -3, ...), but in memory and never over the limit."""
    base = slugify(name, max_length=SLUG_MAX_LENGTH)
    if base not in taken:
        taken.add(base)
        return base
    n = counters.get(base, 1)
    while True:
        n += 1
        suffix = f"-{n}"
        candidate = base[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            break
    counters[base] = n
    taken.add(candidate)
    return candidate


@functools.cache
def _lower(text: str) -> str:
    """Lower-case for the middle of a sentence, keeping acronyms and single letters:
    "Smart TV" -> "smart TV", "Vitamin C" -> "vitamin C", "All-Weather" -> "all-weather"."""
    return " ".join(
        word.lower()
        if len(word) > 1 and all(part == part.capitalize() for part in word.split("-"))
        else word
        for word in text.split(" ")
    )


def _join(items: list[str]) -> str:
    """English enumeration: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _timestamps(rng: random.Random) -> tuple[dt.datetime, dt.datetime]:
    age = int(rng.random() * _YEAR_SECONDS)
    created = REFERENCE_TIME - dt.timedelta(seconds=age)
    if rng.random() < 0.5:
        return created, created
    return created, created + dt.timedelta(seconds=_int(rng, 0, age))


def _generate_brands(
    rng: random.Random,
) -> tuple[list[DemoBrand], dict[str, list[tuple[str, str]]]]:
    focus = {root.code: root.focus for root in _ROOTS}
    brands: list[DemoBrand] = []
    by_root: dict[str, list[tuple[str, str]]] = {root.code: [] for root in _ROOTS}
    for i, (name, codes) in enumerate(_BRANDS):
        slug = slugify(name, max_length=140)
        roots = codes.split()
        offers = _join([focus[code] for code in roots])
        description = (
            f"{name} offers {offers} and has been known for "
            f"{_pick(rng, _BRAND_TRAITS)} since {_int(rng, 1948, 2019)}."
        )
        brands.append(
            DemoBrand(
                name=name,
                slug=slug,
                description=description,
                logo_url=f"https://cdn.example.com/brands/{slug}.png",
                created_at=REFERENCE_TIME - dt.timedelta(days=400, minutes=len(_BRANDS) - i),
            )
        )
        for code in roots:
            by_root[code].append((name, slug))
    return brands, by_root


def _generate_categories(
    rng: random.Random, brands_by_root: dict[str, list[tuple[str, str]]]
) -> tuple[list[DemoCategory], list[_LeafContext]]:
    categories: list[DemoCategory] = []
    leaves: list[_LeafContext] = []
    created = REFERENCE_TIME - dt.timedelta(days=390)

    def add(name: str, parent: DemoCategory | None, description: str) -> DemoCategory:
        slug = slugify(name, max_length=140)
        path = f"{parent.path}/{slug}" if parent else slug
        category = DemoCategory(
            path=path,
            parent_path=parent.path if parent else None,
            name=name,
            slug=slug,
            description=description,
            depth=parent.depth + 1 if parent else 0,
            created_at=created + dt.timedelta(minutes=len(categories)),
        )
        categories.append(category)
        return category

    def blurb(name: str) -> str:
        return _pick(rng, _CATEGORY_BLURBS).format(name=name, lower=_lower(name))

    for root in _ROOTS:
        root_cat = add(root.name, None, root.description)
        for child in root.children:
            child_cat = add(child.name, root_cat, blurb(child.name))
            for leaf in child.leaves:
                leaf_cat = add(leaf.name, child_cat, blurb(leaf.name))
                leaves.append(
                    _LeafContext(
                        root=root,
                        leaf=leaf,
                        path=leaf_cat.path,
                        sku_prefix=f"{root.code}-{child.code}-",
                        brands=tuple(brands_by_root[root.code]),
                        materials=leaf.materials or leaf.qualifiers,
                        material_key=leaf.material_key or root.material_key,
                        plurals={noun: _plural(noun) for noun in leaf.nouns},
                    )
                )
    paths = [c.path for c in categories]
    assert len(set(paths)) == len(paths), "category slugs must be unique among siblings"
    return categories, leaves


def _product_name(rng: random.Random, ctx: _LeafContext, brand: str, noun: str) -> tuple[str, str]:
    """The product name and the qualifier used in it ("" when none)."""
    adjective = _pick(rng, ctx.root.adjectives)
    qualifier = _pick(rng, ctx.leaf.qualifiers)
    pattern = rng.random()
    if pattern < 0.45:
        return f"{brand} {adjective} {qualifier} {noun}", qualifier
    if pattern < 0.7:
        return f"{brand} {qualifier} {noun}", qualifier
    if pattern < 0.9:
        return f"{brand} {adjective} {noun} {_pick(rng, _SERIES)}", ""
    return f"{brand} {qualifier} {noun} {_pick(rng, _SERIES)}", qualifier


def _description(
    rng: random.Random,
    ctx: _LeafContext,
    brand: str,
    noun: str,
    material: str | None,
    warranty: int | None,
) -> str:
    """Two to four sentences: what it is and is made of, what it is for, features, warranty."""
    root = ctx.root
    thing = _lower(noun)
    plural = ctx.plurals[noun] == noun
    this, verb, it = ("These", "are", "they") if plural else ("This", "is", "it")
    adjective = _lower(_pick(rng, root.adjectives))
    if material and ctx.material_key == "key_ingredient":
        stuff = _lower(material)
        opening = _pick(
            rng,
            (
                f"{this} {adjective} {thing} from {brand} {verb} enriched with {stuff}.",
                f"Made with {stuff}, {this.lower()} {adjective} {thing} {verb} "
                f"a small daily luxury.",
            ),
        )
    elif material:
        stuff = _lower(material)
        opening = _pick(
            rng,
            (
                f"{this} {adjective} {thing} from {brand} {verb} made from {stuff}.",
                f"Crafted from {stuff}, {this.lower()} {thing} pair{'' if plural else 's'} "
                f"{_article(adjective)} {adjective} design with everyday practicality.",
                f"{brand}'s {adjective} {thing} {verb} built around {stuff} for comfort and "
                f"durability.",
            ),
        )
    else:
        opening = f"{this} {adjective} {thing} from {brand} {verb} made to last."
    sentences = [opening, f"Designed for {_pick(rng, root.uses)}."]
    if root.features:
        first, second = _sample(rng, root.features, 2)
        sentences.append(f"Features include {first} and {second}.")
    if rng.random() < 0.5:
        things = _lower(ctx.plurals[noun])
        if warranty:
            come = "come" if plural else "comes"
            sentences.append(
                f"Like all {brand} {things}, {it} {come} with a {warranty}-year warranty."
            )
        else:
            sentences.append(f"One of our most popular {things}.")
    return " ".join(sentences)


def _book(
    rng: random.Random, ctx: _LeafContext, brand: str, noun: str
) -> tuple[str, str, dict[str, AttributeValue]]:
    title = f"The {_pick(rng, _TITLE_ADJECTIVES)} {_pick(rng, _TITLE_NOUNS)}"
    name = f"{title}: {_article(noun).capitalize()} {noun}"
    attributes: dict[str, AttributeValue] = {"weight_kg": _r(rng, *ctx.leaf.kg, digits=2)}
    attributes.update(_EXTRAS["book"](rng))
    adjective = _pick(rng, ctx.root.adjectives)
    sentences = [
        f"{title} is {_article(adjective)} {adjective} {_lower(noun)} by {attributes['author']}.",
        f"Published by {brand} in {str(attributes['format']).lower()}, "
        f"{attributes['pages']} pages.",
    ]
    if rng.random() < 0.6:
        sentences.append(f"Perfect for {_pick(rng, ctx.root.uses)}.")
    if rng.random() < 0.4:
        sentences.append(f"A favourite among readers of {_lower(ctx.leaf.name)}.")
    return name, " ".join(sentences), attributes


def _product(
    rng: random.Random,
    number: int,
    ctx: _LeafContext,
    taken_slugs: set[str],
    slug_counters: dict[str, int],
) -> DemoProduct:
    root, leaf = ctx.root, ctx.leaf
    brand, brand_slug = _pick(rng, ctx.brands)
    noun = _pick(rng, leaf.nouns)
    sku = f"{ctx.sku_prefix}{number:06d}"

    if root is _BOOKS:
        name, description, attributes = _book(rng, ctx, brand, noun)
        options: list[tuple[str, list[str]]] = []
    else:
        name, qualifier = _product_name(rng, ctx, brand, noun)
        options = _options_for(rng, leaf.variants, ctx)
        option_names = {n for n, _ in options}
        attributes = {}
        if root.colors and "Color" not in option_names:
            attributes["color"] = _pick(rng, root.colors)
        material: str | None = None
        if ctx.material_key and ctx.materials:
            material = qualifier if qualifier in ctx.materials else _pick(rng, ctx.materials)
            attributes[ctx.material_key] = material
        attributes["weight_kg"] = _r(rng, *leaf.kg, digits=2)
        warranty: int | None = None
        if root.warranty:
            warranty = _pick(rng, root.warranty)
            attributes["warranty_years"] = warranty
        if leaf.extras:
            attributes.update(_EXTRAS[leaf.extras](rng))
        description = _description(rng, ctx, brand, noun, material, warranty)

    draw = rng.random()
    status = (
        ProductStatus.active.value
        if draw < 0.85
        else ProductStatus.draft.value
        if draw < 0.95
        else ProductStatus.archived.value
    )
    if status == ProductStatus.draft.value or rng.random() < 0.12:
        rating_count, rating_avg = 0, 0.0
    else:
        rating_count = min(5000, int(rng.paretovariate(1.2) * 3))
        rating_avg = round(min(5.0, max(1.0, rng.gauss(4.1, 0.6))), 1)
    popularity = round(rating_count * rating_avg / 5 + rng.random() * 25, 3)
    created_at, updated_at = _timestamps(rng)

    base_cents = _base_price_cents(rng, *leaf.price)
    return DemoProduct(
        sku=sku,
        slug=_unique_slug(name, taken_slugs, slug_counters),
        name=name,
        description=description,
        status=status,
        brand_slug=brand_slug,
        category_path=ctx.path,
        attributes=attributes,
        options=[{"name": n, "values": values} for n, values in options],
        currency=CURRENCY,
        variants=_variants(rng, sku, base_cents, options),
        rating_avg=rating_avg,
        rating_count=rating_count,
        popularity=popularity,
        created_at=created_at,
        updated_at=updated_at,
    )


def generate_catalog(seed: int = 42, products: int = 2000) -> DemoCatalog:
    """A demo catalog that depends only on `seed` and `products`.

    Products are spread evenly at random over the leaf categories; a brand only appears in the
    root categories it sells in. SKUs are `<ROOT>-<CHILD>-<number>` (variants append their option
    values), slugs come from the names and are suffixed -2, -3, ... when names repeat."""
    if products < 0:
        raise ValueError("products must not be negative")
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    brands, brands_by_root = _generate_brands(rng)
    categories, leaves = _generate_categories(rng, brands_by_root)
    taken: set[str] = set()
    counters: dict[str, int] = {}
    # The objects built here hold no reference cycles, yet allocating millions of them makes the
    # cyclic collector run over and over: pausing it cuts the generation time by about a third.
    collecting = gc.isenabled()
    gc.disable()
    try:
        items = [
            _product(rng, number, _pick(rng, leaves), taken, counters)
            for number in range(1, products + 1)
        ]
    finally:
        if collecting:
            gc.enable()
    return DemoCatalog(seed=seed, brands=brands, categories=categories, products=items)


# --------------------------------------------------------------------------- database


class SeedConflict(RuntimeError):
    """The database already holds rows that clash with the demo catalog."""


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH_SIZE):
        yield rows[start : start + BATCH_SIZE]


async def _insert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    statement = insert(table)
    for batch in _batches(rows):
        await conn.execute(statement, batch)


async def seed_into(conn: AsyncConnection, catalog: DemoCatalog) -> dict[str, int]:
    """Insert `catalog` on `conn` with batched Core inserts; the caller owns the transaction.

    Rows get fresh ids; the derived product columns (`price_min`, `price_max`, `total_stock`)
    are computed from the variants the same way `products.service.refresh_aggregates` does.
    Returns the number of rows inserted per table kind."""
    brand_ids: dict[str, uuid.UUID] = {}
    rows: list[dict[str, Any]] = []
    for brand in catalog.brands:
        brand_id = brand_ids[brand.slug] = new_id()
        rows.append(
            {
                "id": brand_id,
                "name": brand.name,
                "slug": brand.slug,
                "description": brand.description,
                "logo_url": brand.logo_url,
                "created_at": brand.created_at,
                "updated_at": brand.created_at,
                "version": 1,
            }
        )
    await _insert(conn, _table(Brand), rows)

    category_ids: dict[str, uuid.UUID] = {}
    rows = []
    for category in sorted(catalog.categories, key=lambda c: c.depth):
        category_id = category_ids[category.path] = new_id()
        rows.append(
            {
                "id": category_id,
                "parent_id": category_ids[category.parent_path] if category.parent_path else None,
                "name": category.name,
                "slug": category.slug,
                "description": category.description,
                "created_at": category.created_at,
                "updated_at": category.created_at,
                "version": 1,
            }
        )
    await _insert(conn, _table(Category), rows)

    product_table, variant_table = _table(Product), _table(ProductVariant)
    variant_count = 0
    for start in range(0, len(catalog.products), BATCH_SIZE):
        product_rows: list[dict[str, Any]] = []
        variant_rows: list[dict[str, Any]] = []
        for product in catalog.products[start : start + BATCH_SIZE]:
            product_id = new_id()
            prices = [v.price for v in product.variants]
            product_rows.append(
                {
                    "id": product_id,
                    "sku": product.sku,
                    "slug": product.slug,
                    "name": product.name,
                    "description": product.description,
                    "status": product.status,
                    "brand_id": brand_ids[product.brand_slug],
                    "category_id": category_ids[product.category_path],
                    "owner_id": None,
                    "attributes": product.attributes,
                    "options": product.options,
                    "currency": product.currency,
                    "price_min": min(prices) if prices else Decimal(0),
                    "price_max": max(prices) if prices else Decimal(0),
                    "total_stock": sum(v.stock for v in product.variants),
                    "rating_avg": product.rating_avg,
                    "rating_count": product.rating_count,
                    "popularity": product.popularity,
                    "deleted_at": None,
                    "created_at": product.created_at,
                    "updated_at": product.updated_at,
                    "version": 1,
                }
            )
            for position, variant in enumerate(product.variants):
                variant_rows.append(
                    {
                        "id": new_id(),
                        "product_id": product_id,
                        "sku": variant.sku,
                        "price": variant.price,
                        "stock": variant.stock,
                        "option_values": variant.option_values,
                        "position": position,
                        "created_at": product.created_at,
                        "updated_at": product.updated_at,
                        "version": 1,
                    }
                )
        await _insert(conn, product_table, product_rows)
        await _insert(conn, variant_table, variant_rows)
        variant_count += len(variant_rows)

    return {
        "brands": len(catalog.brands),
        "categories": len(catalog.categories),
        "products": len(catalog.products),
        "variants": variant_count,
    }


async def seed_database(
    settings: Settings, *, products: int = 2000, seed: int = 42, if_empty: bool = False
) -> str:
    """Seed the configured database in one transaction and describe what was done.

    With `if_empty`, a database that already has products (even soft-deleted ones) is left
    alone. Without it, seeding into a non-empty catalog fails on the unique brand names rather
    than mixing two demo catalogs."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            if if_empty:
                product_table = _table(Product)
                existing = await conn.execute(select(product_table.c.id).limit(1))
                if existing.first() is not None:
                    return "the catalog already has products: nothing seeded"
            catalog = generate_catalog(seed=seed, products=products)
            try:
                counts = await seed_into(conn, catalog)
            except IntegrityError as exc:
                raise SeedConflict(
                    "the database already holds catalog rows that clash with the demo catalog; "
                    "seed an empty database or pass --if-empty"
                ) from exc
    finally:
        await engine.dispose()
    return (
        f"seeded {counts['brands']} brands, {counts['categories']} categories, "
        f"{counts['products']} products, {counts['variants']} variants"
    )
