// The analytics dashboard: signs in with the API's token endpoint, then reads the analytics
// API for the chosen date range and draws it; the search box queries the search API live.
import uPlot from "uplot";

const API = "/api/v1";
const TOKEN_KEY = "catalog.dashboard.token";
const $ = (selector) => document.querySelector(selector);
const charts = new Map();
const filters = { brand_id: null, category_id: null };
let token = sessionStorage.getItem(TOKEN_KEY);
let searchTimer = 0;
let searchSeq = 0;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value; // CSSOM: allowed by the page's CSP
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = new Intl.NumberFormat();
const pct = (x) => `${(x * 100).toFixed(1)} %`;
const isoDay = (d) => d.toISOString().slice(0, 10);

class Unauthorized extends Error {}
class Forbidden extends Error {}

async function api(path, params = {}) {
  const url = new URL(API + path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== "") url.searchParams.set(k, v);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) throw new Unauthorized();
  if (response.status === 403) throw new Forbidden();
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// ------------------------------------------------------------------ session

function showDashboard(signedIn) {
  $("#login").hidden = signedIn;
  $("#app").hidden = !signedIn;
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("#login .error");
  error.textContent = "";
  const body = new URLSearchParams({ username: form.email.value, password: form.password.value });
  const response = await fetch(`${API}/auth/token`, { method: "POST", body });
  if (!response.ok) {
    error.textContent = response.status === 429 ? "Too many attempts; wait a minute." : "Wrong email or password.";
    return;
  }
  token = (await response.json()).access_token;
  sessionStorage.setItem(TOKEN_KEY, token);
  form.password.value = "";
  showDashboard(true);
  await load();
}

function signOut(message = "") {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showDashboard(false);
  $("#login .error").textContent = message;
}

// ------------------------------------------------------------------ charts

function timeSeries(id, days, series) {
  const box = document.getElementById(id);
  const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const data = [xs, ...series.map((s) => s.values)];
  box.dataset.points = String(xs.length);
  box.dataset.total = String(series.reduce((n, s) => n + s.values.reduce((a, b) => a + b, 0), 0));
  const old = charts.get(id);
  if (old) old.destroy();
  const opts = {
    width: Math.max(240, box.clientWidth),
    height: 220,
    legend: { show: true, live: false },
    scales: { x: { time: true } },
    axes: [{}, { size: 48 }],
    series: [
      {},
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        fill: `${s.color}22`,
        points: { show: xs.length < 40 },
      })),
    ],
  };
  box.replaceChildren();
  charts.set(id, new uPlot(opts, data, box));
}

function bars(id, items, label, value, detail = () => "") {
  const list = document.getElementById(id);
  const max = Math.max(1, ...items.map(value));
  list.dataset.items = String(items.length);
  list.replaceChildren(
    ...(items.length
      ? items.map((item) =>
          el(
            "li",
            {},
            el("span", { class: "label", title: label(item) }, label(item)),
            el("b", {}, fmt.format(value(item)), detail(item)),
            el("div", { class: "track" }, el("div", { class: "fill", style: `width:${(100 * value(item)) / max}%` })),
          ),
        )
      : [el("li", { class: "empty" }, "Nothing in this period")]),
  );
}

function kpi(id, value) {
  document.getElementById(id).textContent = value;
}

// ------------------------------------------------------------------ data

function range() {
  return { from: $("#from").value, to: $("#to").value };
}

function setRange(days) {
  const to = new Date();
  const from = new Date(to.getTime() - (days - 1) * 86400000);
  $("#from").value = isoDay(from);
  $("#to").value = isoDay(to);
}

function everyDay(from, to) {
  const out = [];
  for (let d = new Date(`${from}T00:00:00Z`); isoDay(d) <= to; d = new Date(d.getTime() + 86400000)) out.push(isoDay(d));
  return out;
}

async function load() {
  const period = range();
  try {
    const [views, search, products, users, inventory] = await Promise.all([
      api("/analytics/views", period),
      api("/analytics/search", { ...period, limit: 8 }),
      api("/analytics/products", { ...period, limit: 8 }),
      api("/analytics/users", period),
      api("/analytics/inventory", { limit: 8 }),
    ]);
    const days = everyDay(period.from, period.to);
    const viewsByDay = new Map(views.days.map((d) => [d.day, d.views]));
    const searchByDay = new Map(search.volume.map((d) => [d.day, d.searches]));
    timeSeries("views-chart", days, [
      { label: "Product views", values: days.map((d) => viewsByDay.get(d) || 0), color: "#2563eb" },
      { label: "Searches", values: days.map((d) => searchByDay.get(d) || 0), color: "#16a34a" },
    ]);
    timeSeries("active-chart", days, [
      { label: "Active visitors", values: users.active_per_day.map((d) => d.active), color: "#9333ea" },
      { label: "Signed in", values: users.active_per_day.map((d) => d.signed_in), color: "#ea580c" },
    ]);
    kpi("kpi-views", fmt.format(views.days.reduce((n, d) => n + d.views, 0)));
    kpi("kpi-searches", fmt.format(search.volume.reduce((n, d) => n + d.searches, 0)));
    kpi("kpi-ctr", pct(users.search_to_click_rate));
    kpi("kpi-oos", fmt.format(inventory.out_of_stock_count));
    bars("top-products", products.items.filter((p) => p.views || p.clicks), (p) => p.name, (p) => p.views,
      (p) => ` · ${p.clicks} clicks`);
    bars("top-queries", search.top_queries, (q) => q.query, (q) => q.searches);
    bars("zero-queries", search.zero_result_queries, (q) => q.query, (q) => q.searches);
    inventoryTable(inventory);
    $("#status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof Unauthorized) signOut("Your session ended; sign in again.");
    else if (error instanceof Forbidden) signOut("Only administrators can open the dashboard.");
    else $("#status").textContent = `Could not load: ${error.message}`;
  }
}

function inventoryTable(inventory) {
  const rows = [
    ...inventory.out_of_stock.map((v) => ({ ...v, kind: "out" })),
    ...inventory.low_stock.map((v) => ({ ...v, kind: "low" })),
  ];
  $("#inventory-summary").textContent =
    `${inventory.out_of_stock_count} out of stock · ${inventory.low_stock_count} low · ` +
    `${inventory.without_images_count} without images · ${inventory.without_description_count} without description`;
  const body = $("#inventory tbody");
  body.dataset.items = String(rows.length);
  body.replaceChildren(
    ...(rows.length
      ? rows.map((v) =>
          el("tr", {},
            el("td", {}, v.name),
            el("td", {}, v.sku),
            el("td", { class: "num" }, v.stock),
            el("td", {}, el("span", { class: `tag ${v.kind}` }, v.kind === "out" ? "out of stock" : `≤ ${v.low_stock_threshold}`)),
          ),
        )
      : [el("tr", {}, el("td", { colspan: "4", class: "empty" }, "No stock alerts"))]),
  );
}

// ------------------------------------------------------------------ live search

function scheduleSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 200);
}

async function runSearch() {
  const q = $("#q").value.trim();
  const seq = ++searchSeq;
  const results = $("#results");
  if (!q && !filters.brand_id && !filters.category_id) {
    results.replaceChildren();
    $("#facets").replaceChildren();
    $("#search-total").textContent = "";
    return;
  }
  try {
    const data = await api("/search", { q, page_size: 8, ...filters });
    if (seq !== searchSeq) return; // a newer search is on its way
    $("#search-total").textContent = `${fmt.format(data.total)} result${data.total === 1 ? "" : "s"}` +
      (data.did_you_mean ? ` · did you mean “${data.did_you_mean}”?` : "");
    results.dataset.items = String(data.items.length);
    results.replaceChildren(
      ...data.items.map((p) =>
        el("li", {},
          el("span", {}, p.name, el("div", { class: "meta" }, [p.brand?.name, p.category?.name].filter(Boolean).join(" · "))),
          el("b", {}, `${p.price_min} ${p.currency}`),
        ),
      ),
    );
    renderFacets(data.facets);
  } catch (error) {
    if (error instanceof Unauthorized) signOut();
    else $("#search-total").textContent = `Search failed: ${error.message}`;
  }
}

function renderFacets(facets) {
  const chip = (name, item) =>
    el("button", {
      type: "button",
      class: `chip${filters[name] === item.id ? " on" : ""}`,
      onclick: () => {
        filters[name] = filters[name] === item.id ? null : item.id;
        runSearch();
      },
    }, `${item.name} (${item.count})`);
  const groups = [];
  if (facets.brands.length) groups.push(el("div", { class: "group" }, "Brands"), ...facets.brands.slice(0, 8).map((b) => chip("brand_id", b)));
  if (facets.categories.length) groups.push(el("div", { class: "group" }, "Categories"), ...facets.categories.slice(0, 8).map((c) => chip("category_id", c)));
  $("#facets").replaceChildren(...groups);
}

// ------------------------------------------------------------------ start

function start() {
  $("#login").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut());
  $("#apply").addEventListener("click", load);
  for (const button of document.querySelectorAll("[data-days]")) {
    button.addEventListener("click", () => {
      setRange(Number(button.dataset.days));
      load();
    });
  }
  $("#q").addEventListener("input", scheduleSearch);
  new ResizeObserver(() => {
    for (const [id, chart] of charts) {
      const width = Math.max(240, document.getElementById(id).clientWidth);
      if (Math.abs(chart.width - width) > 4) chart.setSize({ width, height: 220 });
    }
  }).observe($("main"));
  setRange(30);
  showDashboard(Boolean(token));
  if (token) load();
}

start();
