"use strict";

(function () {
  const CART_KEY = "securecart.cart";
  const CHECKOUT_KEY = "securecart.checkout";
  const ORDER_ATTEMPTS = 3;
  const PALETTE = ["#0f766e", "#1d4ed8", "#7c3aed", "#be123c", "#b45309", "#15803d", "#0369a1", "#4338ca"];
  const $ = (selector) => document.querySelector(selector);
  // config.js names the API's origin when this page is served from elsewhere (an S3 website bucket).
  const API_BASE = (window.SECURECART_API || "").replace(/\/+$/, "");
  const products = new Map();
  let cart = loadCart();

  function loadCart() {
    try {
      const saved = JSON.parse(localStorage.getItem(CART_KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((line) => line.sku && line.quantity > 0) : [];
    } catch (err) {
      return [];
    }
  }

  function saveCart() {
    try {
      localStorage.setItem(CART_KEY, JSON.stringify(cart));
    } catch (err) {
      // Private browsing can refuse storage; the cart still works for this page view.
    }
  }

  function money(cents) {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(cents / 100);
  }

  function colourFor(text) {
    let hash = 0;
    for (const ch of text || "") hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    return PALETTE[hash % PALETTE.length];
  }

  function label(category) {
    return category ? category.charAt(0).toUpperCase() + category.slice(1) : "";
  }

  function initials(name) {
    return (name || "?").split(/\s+/).slice(0, 2).map((word) => word[0]).join("").toUpperCase();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data")) node.setAttribute(key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), value);
      else node[key] = value;
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function api(path, options) {
    const response = await fetch(API_BASE ? API_BASE + "/" + path : path, Object.assign({ headers: { Accept: "application/json" } }, options));
    const servedBy = response.headers.get("X-SecureCart-Instance");
    if (servedBy) {
      const db = response.headers.get("X-SecureCart-DB");
      $("#served-by").textContent = "Served by " + servedBy + (db ? " · database: " + db : "");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.message ? body.message : "The shop is not answering (HTTP " + response.status + ").";
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function showMessage(text, kind) {
    const box = $("#message");
    box.textContent = text;
    box.className = "message" + (kind ? " " + kind : "");
    box.hidden = !text;
  }

  function productCard(product) {
    const image = el("div", { class: "product-image", text: initials(product.name) });
    image.style.backgroundColor = colourFor(product.category);
    // Only local images: the storefront works offline, so remote URLs would show as broken.
    if (product.imageUrl && product.imageUrl.startsWith("/")) {
      image.style.backgroundImage = "url(" + JSON.stringify(product.imageUrl) + ")";
      image.textContent = "";
    }
    const outOfStock = product.stock !== null && product.stock <= 0;
    let stockText = "In stock";
    let stockClass = "stock";
    if (outOfStock) {
      stockText = "Out of stock";
      stockClass += " out";
    } else if (product.lowStock) {
      stockText = "Only " + product.stock + " left";
      stockClass += " low";
    }
    const button = el("button", { class: "add-to-cart", type: "button", text: outOfStock ? "Sold out" : "Add to cart", dataTestid: "add-to-cart" });
    button.disabled = outOfStock;
    button.addEventListener("click", () => addToCart(product.sku));
    return el(
      "article",
      { class: "product-card", dataSku: product.sku, dataTestid: "product-card" },
      image,
      el(
        "div",
        { class: "product-body" },
        el("span", { class: "product-category", text: product.category }),
        el("span", { class: "product-name", text: product.name }),
        el("p", { class: "product-description", text: product.description || "" }),
        el("div", { class: "product-foot" }, el("span", { class: "price", text: money(product.priceCents) }), el("span", { class: stockClass, text: stockText }))
      ),
      button
    );
  }

  async function loadCategories() {
    try {
      const body = await api("api/categories");
      const select = $("#category");
      for (const category of body.categories) {
        select.append(el("option", { value: category.name, text: label(category.name) + " (" + category.productCount + ")" }));
      }
    } catch (err) {
      showMessage(err.message);
    }
  }

  async function search() {
    const params = new URLSearchParams();
    const q = $("#search").value.trim();
    const category = $("#category").value;
    if (q) params.set("q", q);
    if (category) params.set("category", category);
    params.set("limit", "60");
    const grid = $("#products");
    grid.setAttribute("aria-busy", "true");
    try {
      const body = await api("api/products?" + params.toString());
      grid.replaceChildren(...body.products.map(productCard));
      for (const product of body.products) products.set(product.sku, product);
      $("#result-count").textContent = body.count === 1 ? "1 product" : body.count + " products";
      $("#catalog-title").textContent = q || category ? "Results" + (q ? " for “" + q + "”" : "") + (category ? " in " + label(category) : "") : "Shop all products";
      showMessage(body.count ? "" : "No products match your search. Try another word or category.", "info");
      renderCart();
    } catch (err) {
      showMessage(err.message);
    } finally {
      grid.removeAttribute("aria-busy");
    }
  }

  function addToCart(sku) {
    const line = cart.find((item) => item.sku === sku);
    if (line) line.quantity += 1;
    else cart.push({ sku, quantity: 1 });
    saveCart();
    renderCart();
    showCheckout(false);
  }

  function changeQuantity(sku, delta) {
    const line = cart.find((item) => item.sku === sku);
    if (!line) return;
    line.quantity += delta;
    cart = cart.filter((item) => item.quantity > 0);
    saveCart();
    renderCart();
  }

  async function fetchCartProducts() {
    const missing = cart.filter((line) => !products.has(line.sku));
    const gone = new Set();
    await Promise.all(
      missing.map((line) =>
        api("api/products/" + encodeURIComponent(line.sku))
          .then((product) => products.set(product.sku, product))
          .catch((err) => {
            if (err.status === 404) gone.add(line.sku);
          })
      )
    );
    // A product that no longer exists cannot be ordered: drop it rather than fail at checkout.
    cart = cart.filter((line) => !gone.has(line.sku));
    saveCart();
    renderCart();
  }

  function renderCart() {
    const list = $("#cart-lines");
    let total = 0;
    let count = 0;
    list.replaceChildren(
      ...cart.map((line) => {
        const product = products.get(line.sku);
        const price = product ? product.priceCents : 0;
        total += price * line.quantity;
        count += line.quantity;
        const minus = el("button", { type: "button", text: "−", title: "One less" });
        const plus = el("button", { type: "button", text: "+", title: "One more" });
        minus.addEventListener("click", () => changeQuantity(line.sku, -1));
        plus.addEventListener("click", () => changeQuantity(line.sku, 1));
        return el(
          "li",
          { class: "cart-line", dataSku: line.sku },
          el("span", { text: product ? product.name : line.sku }),
          el("strong", { text: product ? money(price * line.quantity) : "" }),
          el("span", { class: "qty" }, minus, el("span", { text: String(line.quantity) }), plus),
          el("span", { class: "muted", text: product ? money(price) + " each" : "" })
        );
      })
    );
    $("#cart-count").textContent = String(count);
    $("#cart-total").textContent = money(total);
    $("#cart-empty").hidden = cart.length > 0;
    $("#checkout-button").disabled = cart.length === 0;
  }

  function showCheckout(visible) {
    $("#checkout").hidden = !visible;
    if (visible) {
      $("#confirmation").hidden = true;
      $("#email").focus();
    }
  }

  // One Idempotency-Key per checkout attempt: sending the same order again (an automatic retry after a 502 or a lost
  // connection, another click, a reload) reuses it, so the shop places it once even if an earlier try was committed.
  let pendingCheckout = null;

  function checkoutKey(order) {
    const fingerprint = JSON.stringify(order);
    if (!pendingCheckout) {
      try {
        pendingCheckout = JSON.parse(sessionStorage.getItem(CHECKOUT_KEY) || "null");
      } catch (err) {
        pendingCheckout = null;
      }
    }
    if (!pendingCheckout || pendingCheckout.fingerprint !== fingerprint) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      const key = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      pendingCheckout = { fingerprint, key };
      try {
        sessionStorage.setItem(CHECKOUT_KEY, JSON.stringify(pendingCheckout));
      } catch (err) {
        // Without storage the key still holds for this page view.
      }
    }
    return pendingCheckout.key;
  }

  function checkoutDone() {
    pendingCheckout = null;
    try {
      sessionStorage.removeItem(CHECKOUT_KEY);
    } catch (err) {
      // nothing kept
    }
  }

  async function sendOrder(order, key) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await api("api/orders", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": key },
          body: JSON.stringify(order),
        });
      } catch (err) {
        // No answer, or the load balancer's 502/503/504: the order may or may not be placed; the same key makes
        // retrying safe. Any other answer is the shop's verdict on the order.
        const transient = !err.status || err.status === 502 || err.status === 503 || err.status === 504;
        if (!transient || attempt >= ORDER_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
      }
    }
  }

  async function placeOrder(event) {
    event.preventDefault();
    const button = $("#place-order");
    const order = {
      customerEmail: $("#email").value.trim(),
      items: cart.map((line) => ({ sku: line.sku, quantity: line.quantity })),
      cardToken: $("#card-token").value,
    };
    button.disabled = true;
    button.textContent = "Placing order…";
    try {
      const placed = await sendOrder(order, checkoutKey(order));
      checkoutDone();
      cart = [];
      saveCart();
      renderCart();
      showCheckout(false);
      $("#order-id").textContent = placed.orderId;
      $("#order-total").textContent = money(placed.totalCents);
      $("#order-email").textContent = order.customerEmail;
      $("#confirmation").hidden = false;
      showMessage("");
    } catch (err) {
      showMessage("Your order was not placed: " + err.message);
    } finally {
      button.disabled = false;
      button.textContent = "Place order";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    $("#category").addEventListener("change", search);
    $("#cart-button").addEventListener("click", () => $("#cart").scrollIntoView({ behavior: "smooth" }));
    $("#checkout-button").addEventListener("click", () => showCheckout(true));
    $("#checkout-cancel").addEventListener("click", () => showCheckout(false));
    $("#checkout").addEventListener("submit", placeOrder);
    $("#continue-shopping").addEventListener("click", () => {
      $("#confirmation").hidden = true;
    });
    renderCart();
    loadCategories();
    search().then(fetchCartProducts);
  });
})();
