"""SecureCart seed data: the schema and CSVs in seed/, as Python rows or loaded into PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
from psycopg import sql

from securecart_lab.paths import seed_dir

# Load order respects foreign keys; orders start empty (the labs create them).
TABLES = ("products", "customers", "inventory")
INTEGER_COLUMNS = {"price_cents", "id", "stock", "low_stock_threshold"}
# Loaded under this advisory lock so that two processes seeding at once do not collide.
_LOCK_KEY = 0x5EC0_CA27


def _csv_path(table: str) -> Path:
    return seed_dir() / f"{table}.csv"


def seed_rows() -> dict[str, list[dict]]:
    """{'products': [...], 'customers': [...], 'inventory': [...]}: CSV rows with integer columns as int."""
    rows: dict[str, list[dict]] = {}
    for table in TABLES:
        with open(_csv_path(table), newline="", encoding="utf-8") as handle:
            rows[table] = [
                {key: int(value) if key in INTEGER_COLUMNS else value for key, value in row.items()}
                for row in csv.DictReader(handle)
            ]
    return rows


def _loaded(conn: psycopg.Connection) -> bool:
    if conn.execute("SELECT to_regclass('products')").fetchone()[0] is None:
        return False
    return conn.execute("SELECT EXISTS (SELECT 1 FROM products)").fetchone()[0]


def load(conn: psycopg.Connection, reset: bool = False) -> bool:
    """Create the schema and COPY the seed CSVs in, in one transaction. Does nothing when products already
    has rows, unless reset=True, which drops the SecureCart tables (orders included) and reloads.
    Returns True when it loaded."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        if reset:
            conn.execute("DROP TABLE IF EXISTS order_lines, orders, inventory, customers, products CASCADE")
        elif _loaded(conn):
            return False
        conn.execute((seed_dir() / "schema.sql").read_text())
        for table in TABLES:
            with open(_csv_path(table), encoding="utf-8") as handle:
                columns = handle.readline().strip().split(",")
                statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with conn.cursor().copy(statement) as copy:
                    copy.write(handle.read())
    return True


def counts(conn: psycopg.Connection) -> dict[str, int]:
    """Row count of each SecureCart table."""
    return {
        table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
        for table in (*TABLES, "orders", "order_lines")
    }
