"""The committed seed CSVs: generated, consistent, and holding the rows the labs rely on."""

import importlib.util
import re

from securecart_lab.paths import seed_dir
from securecart_lab.postgres.seed import seed_rows


def load_generator():
    spec = importlib.util.spec_from_file_location("seed_generate", seed_dir() / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_csvs_equal_generator_output(tmp_path):
    load_generator().main(tmp_path)
    for name in ("products.csv", "customers.csv", "inventory.csv"):
        assert (tmp_path / name).read_bytes() == (seed_dir() / name).read_bytes(), f"{name}: run python seed/generate.py"


def test_counts_and_types():
    rows = seed_rows()
    assert {table: len(items) for table, items in rows.items()} == {"products": 200, "customers": 150, "inventory": 200}
    assert isinstance(rows["products"][0]["price_cents"], int)
    assert isinstance(rows["inventory"][0]["stock"], int)
    assert isinstance(rows["customers"][0]["id"], int)


def test_products_are_well_formed():
    products = seed_rows()["products"]
    categories = {"electronics": "ELEC", "home": "HOME", "kitchen": "KITC", "outdoors": "OUTD",
                  "books": "BOOK", "apparel": "APPA", "toys": "TOYS", "beauty": "BEAU"}  # fmt: skip
    assert {p["category"] for p in products} == set(categories)
    assert len({p["sku"] for p in products}) == len(products)
    assert len({p["name"] for p in products}) == len(products)
    for product in products:
        assert re.fullmatch(rf"SC-{categories[product['category']]}-\d{{4}}", product["sku"])
        assert product["price_cents"] > 0 and product["description"]


def test_customers_have_unique_emails():
    customers = seed_rows()["customers"]
    assert len({c["email"] for c in customers}) == len(customers)
    assert [c["id"] for c in customers] == list(range(1, len(customers) + 1))


def test_inventory_has_one_row_per_product_and_the_lab_fixtures():
    rows = seed_rows()
    inventory = {row["sku"]: row for row in rows["inventory"]}
    assert set(inventory) == {p["sku"] for p in rows["products"]}
    assert sorted(sku for sku, row in inventory.items() if row["stock"] == 5) == [
        "SC-BOOK-0020", "SC-ELEC-0003", "SC-KITC-0007", "SC-TOYS-0012"]  # fmt: skip
    low = {sku: row["stock"] for sku, row in inventory.items() if row["stock"] < row["low_stock_threshold"]}
    assert low == {"SC-ELEC-0010": 2, "SC-HOME-0015": 0, "SC-OUTD-0004": 3, "SC-APPA-0008": 8, "SC-BEAU-0011": 1}
    assert all(row["stock"] >= 0 for row in inventory.values())
