"""Authorization rules in one place. Routers call these through dependencies; services stay
unaware of who is calling except for the owner they are given."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_

from catalog.auth.principal import Principal, Scope
from catalog.errors import CatalogError
from catalog.models import Product, ProductStatus, Role


class Unauthorized(CatalogError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "Authentication required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="catalog"'})


class Forbidden(CatalogError):
    status = 403
    title = "Forbidden"


def require_authenticated(principal: Principal) -> None:
    if not principal.is_authenticated:
        raise Unauthorized


def require_scope(principal: Principal, scope: Scope) -> None:
    require_authenticated(principal)
    if not principal.has(scope):
        raise Forbidden(f"The credential lacks the '{scope}' scope")


def require_admin(principal: Principal) -> None:
    require_authenticated(principal)
    if not principal.is_admin:
        raise Forbidden("Only administrators may do this")


def require_catalog_admin(principal: Principal) -> None:
    """Brands and categories: admin-only writes."""
    require_scope(principal, Scope.catalog_write)
    require_admin(principal)


def require_product_creator(principal: Principal) -> None:
    require_scope(principal, Scope.catalog_write)
    if principal.role not in (Role.admin, Role.seller):
        raise Forbidden("Only sellers and administrators may create products")


def can_see_product(principal: Principal, product: Product) -> bool:
    return can_see(principal, product.status, product.owner_id)


def can_see(principal: Principal, status: str, owner_id: uuid.UUID | None) -> bool:
    """Active products are public; drafts and archived ones only for their owner and admins."""
    if status == ProductStatus.active.value:
        return True
    return principal.is_admin or (principal.user_id is not None and owner_id == principal.user_id)


def can_manage_product(principal: Principal, product: Product) -> bool:
    if not principal.has(Scope.catalog_write):
        return False
    if principal.is_admin:
        return True
    return principal.role == Role.seller and product.owner_id == principal.user_id


def product_visibility_clause(principal: Principal) -> Any:
    """SQL filter matching `can_see_product`, for lists."""
    if principal.is_admin:
        return None
    active = Product.status == ProductStatus.active.value
    if principal.user_id is None:
        return active
    return or_(active, Product.owner_id == principal.user_id)


def owner_for_new_product(principal: Principal) -> uuid.UUID | None:
    return principal.user_id


def ensure_can_manage_product(principal: Principal, product: Product, not_found: Exception) -> None:
    """Owners and admins manage a product. Another seller gets `not_found` (404), so product ids
    cannot be probed; callers who may never write products get 403."""
    if can_manage_product(principal, product):
        return
    require_scope(principal, Scope.catalog_write)
    if principal.role == Role.seller:
        raise not_found
    raise Forbidden("Only the product's seller or an administrator may change it")
