"""Product queries (run on the reader when there is one)."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

_PRODUCT_COLUMNS = """
    p.sku, p.name, p.category, p.description, p.price_cents, p.image_url,
    i.stock, i.low_stock_threshold
"""


def _product(row: dict) -> dict:
    stock = row["stock"]
    threshold = row["low_stock_threshold"]
    return {
        "sku": row["sku"],
        "name": row["name"],
        "category": row["category"],
        "description": row["description"],
        "priceCents": row["price_cents"],
        "imageUrl": row["image_url"],
        "stock": stock,
        "lowStock": stock is not None and threshold is not None and stock <= threshold,
    }


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: psycopg.Connection, q: str, category: str, limit: int) -> list[dict]:
    """Products whose name or description contains `q` (any case), optionally in one category, by name."""
    sql = f"""
        select {_PRODUCT_COLUMNS}
        from products p left join inventory i on i.sku = p.sku
        where (%(q)s = '' or p.name ilike %(pattern)s or p.description ilike %(pattern)s)
          and (%(category)s = '' or lower(p.category) = lower(%(category)s))
        order by p.name, p.sku
        limit %(limit)s
    """
    params = {"q": q, "pattern": _like_pattern(q), "category": category, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        return [_product(row) for row in cur.execute(sql, params)]


def product(conn: psycopg.Connection, sku: str) -> dict | None:
    """One product with its stock, or None."""
    sql = f"select {_PRODUCT_COLUMNS} from products p left join inventory i on i.sku = p.sku where p.sku = %s"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql, (sku,)).fetchone()
    return _product(row) if row else None


def categories(conn: psycopg.Connection) -> list[dict]:
    """Every category with its number of products, by name."""
    sql = "select category, count(*) from products group by category order by category"
    return [{"name": name, "productCount": count} for name, count in conn.execute(sql)]
