-- SecureCart schema. Idempotent: safe to run on every start.

CREATE TABLE IF NOT EXISTS products (
    sku          text PRIMARY KEY,
    name         text NOT NULL,
    category     text NOT NULL,
    description  text NOT NULL,
    price_cents  integer NOT NULL CHECK (price_cents > 0),
    image_url    text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS customers (
    id         integer PRIMARY KEY,
    email      text UNIQUE NOT NULL,
    full_name  text NOT NULL,
    city       text NOT NULL,
    country    text NOT NULL
);

CREATE TABLE IF NOT EXISTS inventory (
    sku                  text PRIMARY KEY REFERENCES products (sku),
    stock                integer NOT NULL CHECK (stock >= 0),
    low_stock_threshold  integer NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    id              text PRIMARY KEY,
    customer_email  text NOT NULL,
    status          text NOT NULL DEFAULT 'PLACED',
    total_cents     integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS order_lines (
    order_id          text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no           integer NOT NULL,
    sku               text NOT NULL REFERENCES products (sku),
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_cents  integer NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- Product search: by category, by name prefix (lower(name) LIKE 'wire%'), and full text over name + description.
CREATE INDEX IF NOT EXISTS products_category_idx ON products (category);
CREATE INDEX IF NOT EXISTS products_name_lower_idx ON products (lower(name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS products_search_idx ON products
    USING gin (to_tsvector('english', name || ' ' || description));
CREATE INDEX IF NOT EXISTS order_lines_sku_idx ON order_lines (sku);
