from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.categories.schemas import CategoryCreate, CategoryReplace, CategoryUpdate
from catalog.errors import Conflict, DuplicateField, Unprocessable
from catalog.kit.crud import get_or_404, unique_slug
from catalog.kit.invalidation import CATEGORIES, PRODUCTS, REFS, SEARCH, invalidate
from catalog.kit.pagination import page_by_id
from catalog.models import Category, Product


async def get(session: AsyncSession, category_id: uuid.UUID) -> Category:
    return await get_or_404(session, Category, category_id, "Category")


def descendants_cte(category_id: Any) -> Any:
    """Ids of the category and all of its descendants (recursive CTE, any backend)."""
    tree = select(Category.id).where(Category.id == category_id).cte("subtree", recursive=True)
    return tree.union_all(select(Category.id).where(Category.parent_id == tree.c.id))


def descendant_ids_select(category_id: Any) -> Any:
    tree = descendants_cte(category_id)
    return select(tree.c.id)


async def _ensure_parent(session: AsyncSession, parent_id: uuid.UUID | None) -> None:
    if parent_id is None:
        return
    if await session.get(Category, parent_id) is None:
        raise Unprocessable(
            f"Parent category {parent_id} does not exist", loc=["body", "parent_id"]
        )


def _sibling_clause(parent_id: uuid.UUID | None) -> Any:
    return Category.parent_id.is_(None) if parent_id is None else Category.parent_id == parent_id


async def _ensure_slug_free(
    session: AsyncSession, parent_id: uuid.UUID | None, slug: str, exclude: uuid.UUID | None
) -> None:
    stmt = select(Category.id).where(_sibling_clause(parent_id), Category.slug == slug)
    if exclude is not None:
        stmt = stmt.where(Category.id != exclude)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise DuplicateField("slug", slug)


async def list_categories(
    session: AsyncSession, *, limit: int, cursor: str | None, parent_id: uuid.UUID | None
) -> tuple[list[Category], str | None]:
    stmt = select(Category)
    if parent_id is not None:
        stmt = stmt.where(Category.parent_id == parent_id)
    return await page_by_id(session, stmt, Category.id, limit=limit, cursor=cursor)


async def tree(session: AsyncSession) -> list[dict[str, Any]]:
    """The whole category forest, children sorted by name."""
    rows = (
        await session.execute(
            select(Category.id, Category.parent_id, Category.name, Category.slug).order_by(
                Category.name, Category.id
            )
        )
    ).all()
    children: dict[uuid.UUID | None, list[Any]] = defaultdict(list)
    for row in rows:
        children[row.parent_id].append(row)

    def build(parent: uuid.UUID | None, prefix: str, depth: int) -> list[dict[str, Any]]:
        if depth > 64:  # a corrupted tree must not recurse forever
            return []
        out = []
        for row in children.get(parent, []):
            path = f"{prefix}/{row.slug}" if prefix else row.slug
            out.append(
                {
                    "id": row.id,
                    "parent_id": row.parent_id,
                    "name": row.name,
                    "slug": row.slug,
                    "path": path,
                    "children": build(row.id, path, depth + 1),
                }
            )
        return out

    return build(None, "", 0)


async def create(session: AsyncSession, data: CategoryCreate) -> Category:
    await _ensure_parent(session, data.parent_id)
    if data.slug:
        await _ensure_slug_free(session, data.parent_id, data.slug, None)
        slug = data.slug
    else:
        slug = await unique_slug(
            session,
            Category.slug,
            data.name,
            max_length=130,  # room for a "-N" suffix within the 140-character column
            extra=[_sibling_clause(data.parent_id)],
        )
    category = Category(
        name=data.name, slug=slug, parent_id=data.parent_id, description=data.description
    )
    session.add(category)
    await session.flush()
    invalidate(session, CATEGORIES, SEARCH)
    return category


async def _ensure_no_cycle(
    session: AsyncSession, category: Category, new_parent: uuid.UUID | None
) -> None:
    if new_parent is None:
        return
    if new_parent == category.id:
        raise Unprocessable("A category cannot be its own parent", loc=["body", "parent_id"])
    below = set((await session.execute(descendant_ids_select(category.id))).scalars())
    if new_parent in below:
        raise Unprocessable(
            "Moving the category under one of its own descendants would create a cycle",
            loc=["body", "parent_id"],
        )


async def update(
    session: AsyncSession, category: Category, data: CategoryUpdate | CategoryReplace
) -> Category:
    changes: dict[str, Any] = (
        data.changes() if isinstance(data, CategoryUpdate) else data.model_dump()
    )
    parent_id = changes.get("parent_id", category.parent_id)
    if parent_id != category.parent_id:
        await _ensure_parent(session, parent_id)
        await _ensure_no_cycle(session, category, parent_id)
    slug = changes.get("slug", category.slug)
    if slug != category.slug or parent_id != category.parent_id:
        await _ensure_slug_free(session, parent_id, slug, category.id)
    for key, value in changes.items():
        setattr(category, key, value)
    await session.flush()
    # Names appear in product details; moves change which products a category filter finds.
    invalidate(session, CATEGORIES, REFS, PRODUCTS, SEARCH)
    return category


async def delete(session: AsyncSession, category: Category, *, reparent: bool) -> None:
    """Delete a category. Children and products go to its parent when `reparent`, otherwise
    a category that still has any is refused with 409."""
    child_rows = list(
        (await session.execute(select(Category).where(Category.parent_id == category.id))).scalars()
    )
    has_products = (
        await session.execute(select(Product.id).where(Product.category_id == category.id).limit(1))
    ).first() is not None
    if (child_rows or has_products) and not reparent:
        raise Conflict(
            "The category still has sub-categories or products; "
            "pass reparent=true to move them to its parent"
        )
    if child_rows:
        for child in child_rows:
            stmt = select(Category.id).where(
                _sibling_clause(category.parent_id),
                Category.slug == child.slug,
                Category.id.not_in([child.id, category.id]),
            )
            if (await session.execute(stmt.limit(1))).first() is not None:
                raise DuplicateField("slug", child.slug)
        # Free the slug first: a child may share it and is about to become a sibling.
        category.slug = f"deleted-{category.id.hex}"
        await session.flush()
        for child in child_rows:
            child.parent_id = category.parent_id
    if has_products:
        await session.execute(
            sql_update(Product)
            .where(Product.category_id == category.id)
            .values(category_id=category.parent_id, version=Product.version + 1)
        )
    await session.flush()
    await session.delete(category)
    await session.flush()
    invalidate(session, CATEGORIES, REFS, PRODUCTS, SEARCH)
