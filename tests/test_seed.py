"""The demo catalog generator and seeding it through `seed_into` on both profiles."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.seed import DemoCatalog, generate_catalog, seed_into
from tests.factories import API

PRODUCTS = 300
ROOTS = 8


@pytest.fixture(scope="module")
def catalog() -> DemoCatalog:
    return generate_catalog(seed=7, products=PRODUCTS)


class TestGenerateCatalog:
    def test_is_deterministic(self, catalog: DemoCatalog) -> None:
        again = generate_catalog(seed=7, products=PRODUCTS)
        assert again == catalog
        assert again.products[0].description == catalog.products[0].description
        assert again.products[-1].created_at == catalog.products[-1].created_at

    def test_another_seed_gives_another_catalog(self, catalog: DemoCatalog) -> None:
        other = generate_catalog(seed=8, products=PRODUCTS)
        assert other != catalog
        assert [p.name for p in other.products] != [p.name for p in catalog.products]
        assert len(other.products) == PRODUCTS

    def test_product_count_is_exact(self, catalog: DemoCatalog) -> None:
        assert len(catalog.products) == PRODUCTS
        assert generate_catalog(seed=7, products=0).products == []
        with pytest.raises(ValueError, match="negative"):
            generate_catalog(seed=7, products=-1)

    def test_has_many_brands_with_unique_names_and_slugs(self, catalog: DemoCatalog) -> None:
        assert len(catalog.brands) >= 50
        assert len({b.name for b in catalog.brands}) == len(catalog.brands)
        assert len({b.slug for b in catalog.brands}) == len(catalog.brands)
        used = {p.brand_slug for p in catalog.products}
        assert used <= {b.slug for b in catalog.brands}

    def test_categories_form_a_three_level_tree_listed_parents_first(
        self, catalog: DemoCatalog
    ) -> None:
        seen: dict[str, int] = {}
        for category in catalog.categories:
            if category.parent_path is None:
                assert category.depth == 0
                assert category.path == category.slug
            else:
                assert category.parent_path in seen, "parents come before their children"
                assert category.depth == seen[category.parent_path] + 1
                assert category.path == f"{category.parent_path}/{category.slug}"
            seen[category.path] = category.depth
        assert len(seen) == len(catalog.categories), "paths are unique"
        depths = Counter(c.depth for c in catalog.categories)
        assert set(depths) == {0, 1, 2}
        assert depths[0] == ROOTS
        # Every leaf is at the third level: no branch stops early.
        assert {c.depth for c in catalog.leaf_categories} == {2}
        assert len(catalog.leaf_categories) == depths[2]

    def test_products_are_only_in_leaf_categories(self, catalog: DemoCatalog) -> None:
        leaves = {c.path for c in catalog.leaf_categories}
        assert all(p.category_path in leaves for p in catalog.products)
        # Spread over the tree rather than piled into a few categories.
        assert len({p.category_path for p in catalog.products}) > len(leaves) // 2

    def test_skus_and_slugs_are_unique(self, catalog: DemoCatalog) -> None:
        skus = [p.sku for p in catalog.products]
        slugs = [p.slug for p in catalog.products]
        assert len(set(skus)) == len(skus)
        assert len(set(slugs)) == len(slugs)
        variant_skus = [v.sku for p in catalog.products for v in p.variants]
        assert len(set(variant_skus)) == len(variant_skus) == catalog.variant_count
        for product in catalog.products:
            assert all(v.sku.startswith(product.sku) for v in product.variants)

    def test_variants_match_the_product_options(self, catalog: DemoCatalog) -> None:
        with_options = 0
        for product in catalog.products:
            assert product.variants, product.sku
            options: dict[str, list[str]] = {o["name"]: o["values"] for o in product.options}
            if not options:
                assert len(product.variants) == 1
                assert product.variants[0].option_values == {}
                continue
            with_options += 1
            combos: set[tuple[tuple[str, str], ...]] = set()
            for variant in product.variants:
                assert set(variant.option_values) == set(options), product.sku
                for name, value in variant.option_values.items():
                    assert value in options[name], (product.sku, name, value)
                combos.add(tuple(sorted(variant.option_values.items())))
            # One variant per combination, none repeated.
            assert len(combos) == len(product.variants)
            assert len(combos) == math.prod(len(values) for values in options.values())
        assert with_options > 0

    def test_prices_stock_and_statuses_are_plausible(self, catalog: DemoCatalog) -> None:
        statuses = Counter(p.status for p in catalog.products)
        assert set(statuses) <= {"active", "draft", "archived"}
        assert statuses["active"] > PRODUCTS // 2
        for product in catalog.products:
            assert product.currency == "USD"
            assert 0 < product.price_min <= product.price_max
            assert product.total_stock >= 0
            assert 0.0 <= product.rating_avg <= 5.0
            assert product.created_at <= product.updated_at


def _count_tree(nodes: list[dict[str, Any]], depth: int = 0) -> Counter[int]:
    counts: Counter[int] = Counter()
    for node in nodes:
        counts[depth] += 1
        counts += _count_tree(node["children"], depth + 1)
    return counts


async def test_seeded_catalog_is_served_by_the_api(
    app: FastAPI, client: httpx.AsyncClient, catalog: DemoCatalog
) -> None:
    async with app.state.engine.begin() as conn:
        counts = await seed_into(conn, catalog)
    assert counts == {
        "brands": len(catalog.brands),
        "categories": len(catalog.categories),
        "products": PRODUCTS,
        "variants": catalog.variant_count,
    }

    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"{API}/products", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 100
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "paging does not terminate"
    assert len(items) == PRODUCTS
    assert pages == 3
    assert {p["sku"] for p in items} == {p.sku for p in catalog.products}
    assert {p["slug"] for p in items} == {p.slug for p in catalog.products}

    r = await client.get(f"{API}/categories/tree")
    assert r.status_code == 200, r.text
    tree = r.json()
    assert len(tree) == ROOTS
    assert {node["slug"] for node in tree} == {
        c.slug for c in catalog.categories if c.parent_path is None
    }
    assert [node["name"] for node in tree] == sorted(node["name"] for node in tree)
    assert _count_tree(tree) == Counter(c.depth for c in catalog.categories)
    paths: set[str] = set()

    def collect(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            paths.add(node["path"])
            collect(node["children"])

    collect(tree)
    assert paths == {c.path for c in catalog.categories}
