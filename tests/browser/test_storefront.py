"""The storefront in headless Chromium, opened through lab 2's load balancer and from its S3 website bucket (the
page's API calls then go cross-origin to the load balancer): search, add to cart, check out, see the
confirmation, and find the order in PostgreSQL."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import psycopg
import pytest
from cdp import Browser, chromium_path

from securecart_lab import config
from securecart_lab.config import Settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def deployed(lab_ctx):
    """Lab 2's context with the reference solution deployed (unless it already is) and its storefront uploaded."""
    ctx = lab_ctx(2)
    provisioner = ctx.lab.provisioner()
    if not provisioner.is_deployed(ctx) or not provisioner.website_buckets(ctx):
        provisioner.deploy(ctx, ctx.lab.solution_dir)
    return ctx


@pytest.fixture(scope="module")
def site(deployed):
    """The site URL: the load balancer."""
    return deployed.lab.provisioner().site_url(deployed)


@pytest.fixture(scope="module", params=["alb", "s3-website"])
def page(request, deployed, site):
    """Where the browser opens the storefront: the load balancer, or the S3 website bucket."""
    if request.param == "alb":
        return f"{site}/"
    provisioner = deployed.lab.provisioner()
    url = provisioner.storefront_url(deployed, provisioner.website_buckets(deployed)[0])
    assert not url.startswith(site)
    return url


@pytest.fixture
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the storefront browser test needs it.")
    driver = Browser(executable)
    yield driver
    driver.close()


def deployed_database(aws) -> str:
    resources = aws("cloudformation").describe_stack_resources(StackName="securecart-lab02")["StackResources"]
    return next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::RDS::DBInstance")


def visible(browser, testid: str) -> bool:
    """What a person sees: the element is rendered (computed display and visibility) and takes up space."""
    return browser.js(f"""(() => {{
        const e = document.querySelector('[data-testid={testid}]');
        if (!e) return false;
        const s = getComputedStyle(e), r = e.getBoundingClientRect();
        return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0;
    }})()""")


def panels(browser) -> dict[str, bool]:
    return {testid: visible(browser, testid) for testid in ("checkout", "confirmation")}


def test_search_add_to_cart_checkout_and_see_the_confirmation(site, page, browser, aws):
    with urllib.request.urlopen(f"{site}/api/products?limit=24") as response:
        word = json.load(response)["products"][-1]["name"].split()[-1]  # a product off the first row
    with urllib.request.urlopen(f"{site}/api/products?q={urllib.parse.quote(word)}") as response:
        expected_first = json.load(response)["products"][0]["name"]
    browser.goto(page)
    assert browser.wait("document.querySelectorAll('[data-testid=product-card]').length") > 1
    # An empty cart: neither the checkout form nor a "Thank you!" with no order in it.
    assert panels(browser) == {"checkout": False, "confirmation": False}

    browser.js(f"document.querySelector('#search').value = {json.dumps(word)}; document.querySelector('#search-button').click()")
    browser.wait(f"document.querySelector('[data-testid=product-card] .product-name').textContent === {json.dumps(expected_first)}")

    browser.js("document.querySelector('[data-testid=add-to-cart]:not([disabled])').click()")
    browser.wait("document.querySelector('[data-testid=cart-count]').textContent === '1'")
    browser.js("document.querySelector('[data-testid=checkout-button]').click()")
    browser.wait("!document.querySelector('[data-testid=checkout]').hidden")
    assert panels(browser) == {"checkout": True, "confirmation": False}
    browser.js("document.querySelector('[data-testid=email]').value = 'browser-test@example.com';"
               "document.querySelector('[data-testid=place-order]').click()")
    order_id = browser.wait("!document.querySelector('[data-testid=confirmation]').hidden && "
                            "document.querySelector('[data-testid=order-id]').textContent")
    assert order_id.startswith("ord-")
    assert panels(browser) == {"checkout": False, "confirmation": True}
    assert browser.js("document.querySelector('[data-testid=served-by]').textContent").strip()

    database = deployed_database(aws)
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=database)["DBInstances"][0]
    with psycopg.connect(host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], dbname=db["DBName"],
                         user=config.RDS_SUPERUSER, password=Settings.from_env().superpassword) as conn:
        assert conn.execute("SELECT customer_email FROM orders WHERE id = %s", (order_id,)).fetchone() == ("browser-test@example.com",)


def test_a_checkout_retried_after_a_502_places_one_order(site, browser, aws):
    """The first POST reaches the shop (the order is committed) but the browser gets a 502, as when an instance dies
    mid-response: the storefront retries with the same Idempotency-Key and the shop places the order once."""
    email = f"retry-{int(time.time() * 1000)}@example.com"
    browser.goto(f"{site}/")
    browser.wait("document.querySelectorAll('[data-testid=add-to-cart]:not([disabled])').length > 0")
    browser.js("""
        window.__orderKeys = [];
        const realFetch = window.fetch.bind(window);
        window.fetch = async (url, options) => {
          if (String(url).endsWith('api/orders') && options && options.method === 'POST') {
            window.__orderKeys.push(options.headers['Idempotency-Key']);
            const response = await realFetch(url, options);
            if (window.__orderKeys.length === 1) return new Response('<h1>502 Bad Gateway</h1>', {status: 502});
            return response;
          }
          return realFetch(url, options);
        };
        document.querySelector('[data-testid=add-to-cart]:not([disabled])').click();
    """)
    browser.wait("document.querySelector('[data-testid=cart-count]').textContent === '1'")
    browser.js("document.querySelector('[data-testid=checkout-button]').click()")
    browser.wait("!document.querySelector('[data-testid=checkout]').hidden")
    browser.js(f"document.querySelector('[data-testid=email]').value = {json.dumps(email)};"
               "document.querySelector('[data-testid=place-order]').click()")
    order_id = browser.wait("!document.querySelector('[data-testid=confirmation]').hidden && "
                            "document.querySelector('[data-testid=order-id]').textContent")
    keys = browser.js("window.__orderKeys")
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 16
    db = aws("rds").describe_db_instances(DBInstanceIdentifier="securecart-db")["DBInstances"][0]
    with psycopg.connect(host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], dbname=db["DBName"],
                         user=config.RDS_SUPERUSER, password=Settings.from_env().superpassword) as conn:
        assert conn.execute("SELECT id FROM orders WHERE customer_email = %s", (email,)).fetchall() == [(order_id,)]
