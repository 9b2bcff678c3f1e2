// couchpy admin UI: a single page over CouchDB's HTTP API, plain DOM code, no build step.
// Every value shown is inserted as text (never as HTML), so document contents cannot inject markup.
"use strict";

const PAGE = 20;
const view = () => document.getElementById("view");

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function render(...nodes) {
  const v = view();
  v.replaceChildren(...nodes);
  const first = v.querySelector("[autofocus]");
  if (first) first.focus();
}

function flash(text, kind) {
  const box = h("div", { class: kind || "info" }, text);
  document.getElementById("flash").append(box);
  setTimeout(() => box.remove(), kind === "error" ? 8000 : 3000);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.reason ? `${body.error}: ${body.reason}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, options) {
  const opts = Object.assign({ method, credentials: "same-origin", headers: { Accept: "application/json" } }, options || {});
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof File)) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = body.type || "application/octet-stream";
    opts.body = body;
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (resp.status === 401 && !path.startsWith("/_session")) { location.hash = "#/login"; }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

const enc = encodeURIComponent;
function docPath(db, id) {
  if (id.startsWith("_design/")) return `/${enc(db)}/_design/${enc(id.slice(8))}`;
  if (id.startsWith("_local/")) return `/${enc(db)}/_local/${enc(id.slice(7))}`;
  return `/${enc(db)}/${enc(id)}`;
}
function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") parts.push(`${enc(k)}=${enc(v)}`);
  return parts.length ? "?" + parts.join("&") : "";
}
function bytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (e) { flash(e.message, "error"); }
  };
}
function json(value) { return JSON.stringify(value, null, 2); }
function parseJsonArea(area) {
  try { const v = JSON.parse(area.value); area.classList.remove("invalid"); return v; }
  catch (e) { area.classList.add("invalid"); throw new Error("Invalid JSON: " + e.message); }
}
function jsonArea(value, attrs) {
  const area = h("textarea", Object.assign({ spellcheck: "false" }, attrs || {}));
  area.value = typeof value === "string" ? value : json(value);
  area.addEventListener("input", () => {
    try { JSON.parse(area.value); area.classList.remove("invalid"); } catch (e) { area.classList.add("invalid"); }
  });
  return area;
}
function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((c) => (c instanceof Node ? c : h("th", {}, c))))),
    h("tbody", {}, rows));
}

// ------------------------------------------------------------------ session

let session = null;

async function loadSession() {
  session = await api("GET", "/_session");
  const who = document.getElementById("who");
  const name = session.userCtx && session.userCtx.name;
  who.replaceChildren(name ? h("span", {}, name, h("button", { id: "logout", onclick: guard(logout) }, "Log out")) : "");
  return name;
}

async function logout() {
  await api("DELETE", "/_session");
  session = null;
  location.hash = "#/login";
  await loadSession();
}

function loginPage() {
  const name = h("input", { type: "text", id: "login-name", autocomplete: "username", autofocus: true });
  const pass = h("input", { type: "password", id: "login-password", autocomplete: "current-password" });
  const msg = h("p", { class: "err" });
  const form = h("form", { class: "login", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/_session", { name: name.value, password: pass.value });
      await loadSession();
      location.hash = "#/";
    } catch (e) { msg.textContent = e.body && e.body.reason ? e.body.reason : e.message; }
  } }, h("h1", {}, "Log in to couchpy"), h("label", { for: "login-name" }, "Name"), name,
  h("label", { for: "login-password" }, "Password"), pass, msg, h("button", { class: "primary", type: "submit" }, "Log in"));
  render(form);
}

// ------------------------------------------------------------------ databases

async function databasesPage(params) {
  const start = params.get("start") || "";
  const sort = params.get("sort") || "name";
  const names = await api("GET", "/_all_dbs" + qs({ startkey: start ? JSON.stringify(start) : "", limit: PAGE + 1 }));
  const more = names.length > PAGE;
  const page = names.slice(0, PAGE);
  const infos = page.length ? await api("POST", "/_dbs_info", { keys: page }) : [];
  const rows = infos.map((r) => ({ name: r.key, info: r.info || {} }));
  const key = { name: (r) => r.name, docs: (r) => -(r.info.doc_count || 0), size: (r) => -((r.info.sizes || {}).file || 0) }[sort];
  rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const newName = h("input", { type: "text", id: "new-db", placeholder: "new database name" });
  const sortLink = (label, s, cls) => h("th", { class: "sortable " + (cls || "") }, h("a", { href: `#/?sort=${s}${start ? "&start=" + enc(start) : ""}` }, label + (sort === s ? " ▾" : "")));
  render(
    h("h1", {}, "Databases"),
    h("form", { class: "bar", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      await api("PUT", "/" + enc(newName.value));
      flash(`Created ${newName.value}`);
      location.hash = "#/db/" + enc(newName.value);
    }) }, newName, h("button", { class: "primary", type: "submit" }, "Create database"),
    h("span", { class: "muted" }, "Keys: ", h("span", { class: "kbd" }, "/"), " filter, ", h("span", { class: "kbd" }, "g d"), " databases")),
    h("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); location.hash = "#/?start=" + enc(ev.target.elements.start.value); } },
      h("input", { type: "text", name: "start", id: "db-filter", placeholder: "jump to name…", value: start }), h("button", { type: "submit" }, "Go")),
    table([sortLink("Name", "name"), sortLink("Documents", "docs", "num"), h("th", { class: "num" }, "Deleted"), sortLink("Size", "size", "num"), h("th", {}, "")],
      rows.map((r) => h("tr", { "data-db": r.name },
        h("td", {}, h("a", { href: "#/db/" + enc(r.name) }, r.name)),
        h("td", { class: "num" }, r.info.doc_count), h("td", { class: "num" }, r.info.doc_del_count),
        h("td", { class: "num" }, bytes((r.info.sizes || {}).file)),
        h("td", {}, h("button", { class: "danger", onclick: guard(async () => {
          if (!confirm(`Delete database ${r.name} and all its documents?`)) return;
          await api("DELETE", "/" + enc(r.name));
          flash(`Deleted ${r.name}`);
          route();
        }) }, "Delete"))))),
    h("div", { class: "bar" },
      start ? h("a", { href: "#/" }, "« first") : null,
      more ? h("a", { id: "next-page", href: `#/?start=${enc(names[PAGE])}&sort=${sort}` }, "next »") : null),
  );
}

// ------------------------------------------------------------------ one database

function dbTabs(db, active) {
  const tab = (id, label, href) => h("a", { href, class: active === id ? "active" : "" }, label);
  const base = "#/db/" + enc(db);
  return h("div", {},
    h("h1", {}, h("a", { href: "#/" }, "Databases"), " / ", db),
    h("div", { class: "tabs" }, tab("docs", "Documents", base), tab("new", "New document", base + "/new"),
      tab("views", "Views", base + "/views"), tab("find", "Mango query", base + "/find"), tab("indexes", "Indexes", base + "/indexes"),
      tab("design", "Design documents", base + "/design"), tab("security", "Security", base + "/security"), tab("info", "Info", base + "/info")));
}

async function documentsPage(db, params) {
  const start = params.get("start");
  const design = params.get("design") === "1";
  const path = design ? "_design_docs" : "_all_docs";
  const res = await api("GET", `/${enc(db)}/${path}` + qs({ limit: PAGE + 1, startkey: start ? JSON.stringify(start) : "" }));
  const rows = res.rows.slice(0, PAGE);
  const next = res.rows.length > PAGE ? res.rows[PAGE].id : null;
  const jump = h("input", { type: "text", name: "start", placeholder: "jump to id…", value: start || "", id: "doc-filter" });
  render(
    dbTabs(db, design ? "design" : "docs"),
    h("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/db/${enc(db)}${design ? "/design" : ""}?start=${enc(jump.value)}`; } },
      jump, h("button", { type: "submit" }, "Go"),
      h("span", { class: "muted", id: "total-rows" }, `${res.total_rows} rows, from offset ${res.offset}`)),
    table(["ID", "Revision"], rows.map((r) => h("tr", {},
      h("td", {}, h("a", { href: `#/db/${enc(db)}/doc/${enc(r.id)}` }, r.id)), h("td", { class: "muted" }, r.value.rev)))),
    h("div", { class: "bar" },
      start ? h("a", { href: `#/db/${enc(db)}${design ? "/design" : ""}` }, "« first") : null,
      next ? h("a", { id: "next-page", href: `#/db/${enc(db)}${design ? "/design" : ""}?start=${enc(next)}` }, "next »") : null),
  );
}

async function documentPage(db, id) {
  const isNew = id === null;
  let doc = { _id: "" };
  let conflicts = [];
  if (!isNew) {
    doc = await api("GET", docPath(db, id) + "?conflicts=true");
    conflicts = doc._conflicts || [];
    delete doc._conflicts;
  }
  const area = jsonArea(doc, { id: "doc-json", autofocus: true });
  const save = guard(async () => {
    const body = parseJsonArea(area);
    let res;
    if (isNew && !body._id) res = await api("POST", "/" + enc(db), body);
    else res = await api("PUT", docPath(db, body._id || id), body);
    flash(`Saved ${res.id} at ${res.rev}`);
    location.hash = `#/db/${enc(db)}/doc/${enc(res.id)}`;
    if (!isNew) route();
  });
  area.addEventListener("keydown", (ev) => { if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") { ev.preventDefault(); save(); } });
  const parts = [dbTabs(db, isNew ? "new" : "docs"),
    h("h2", {}, isNew ? "New document" : id),
    area,
    h("div", { class: "bar" }, h("button", { class: "primary", id: "save-doc", onclick: save }, "Save"),
      h("span", { class: "muted" }, h("span", { class: "kbd" }, "Ctrl+S"), " saves"),
      isNew ? null : h("button", { class: "danger", id: "delete-doc", onclick: guard(async () => {
        if (!confirm(`Delete ${id}?`)) return;
        await api("DELETE", docPath(db, id) + qs({ rev: doc._rev }));
        flash(`Deleted ${id}`);
        location.hash = "#/db/" + enc(db);
      }) }, "Delete"))];
  if (conflicts.length) parts.push(await conflictsPanel(db, id, doc, conflicts));
  if (!isNew) parts.push(attachmentsPanel(db, id, doc));
  render(...parts);
}

async function conflictsPanel(db, id, winner, conflicts) {
  const leaves = [winner];
  for (const rev of conflicts) leaves.push(await api("GET", docPath(db, id) + qs({ rev })));
  const choose = (keep) => guard(async () => {
    const losers = leaves.filter((d) => d._rev !== keep._rev).map((d) => ({ _id: id, _rev: d._rev, _deleted: true }));
    const res = await api("POST", `/${enc(db)}/_bulk_docs`, { docs: losers });
    const failed = res.filter((r) => r.error);
    if (failed.length) throw new Error(`could not delete ${failed.length} revisions`);
    flash(`Kept ${keep._rev}; ${losers.length} conflicting revisions deleted`);
    route();
  });
  return h("div", { id: "conflicts" }, h("h2", { class: "err" }, `${conflicts.length} conflicting revision(s)`),
    h("p", { class: "muted" }, "The first one is the winner every replica agrees on. Keep one: the others are deleted, on every replica once replicated."),
    leaves.map((d) => h("div", { class: "conflict", "data-rev": d._rev },
      h("div", { class: "bar" }, h("strong", {}, d._rev), d === winner ? h("span", { class: "muted" }, "(current winner)") : null,
        h("button", { class: "pick", onclick: choose(d) }, "Keep this revision")),
      h("pre", {}, json(d)))));
}

function attachmentsPanel(db, id, doc) {
  const atts = doc._attachments || {};
  const file = h("input", { type: "file", id: "att-file" });
  return h("div", { id: "attachments" }, h("h2", {}, "Attachments"),
    table(["Name", "Type", "Size", "Digest"], Object.entries(atts).map(([name, a]) => h("tr", {},
      h("td", {}, h("a", { href: docPath(db, id) + "/" + name.split("/").map(enc).join("/"), download: name }, name)),
      h("td", {}, a.content_type), h("td", { class: "num" }, bytes(a.length)), h("td", { class: "muted" }, a.digest)))),
    h("div", { class: "bar" }, file, h("button", { id: "upload-att", onclick: guard(async () => {
      const f = file.files[0];
      if (!f) throw new Error("Choose a file first");
      await api("PUT", docPath(db, id) + "/" + enc(f.name) + qs({ rev: doc._rev }), f);
      flash(`Uploaded ${f.name}`);
      route();
    }) }, "Upload")));
}

async function viewsPage(db, params) {
  const ddocs = (await api("GET", `/${enc(db)}/_design_docs?include_docs=true`)).rows.map((r) => r.doc);
  const choices = [];
  for (const d of ddocs) for (const v of Object.keys(d.views || {})) choices.push(`${d._id.slice(8)}/${v}`);
  const sel = h("select", { id: "view-select" }, choices.map((c) => h("option", { value: c, selected: c === params.get("v") }, c)));
  const fields = {};
  const field = (name, placeholder) => (fields[name] = h("input", { type: "text", name, placeholder: placeholder || name, value: params.get(name) || "" }));
  const flags = {};
  const flag = (name) => h("label", {}, (flags[name] = h("input", { type: "checkbox", name, checked: params.get(name) === "true" })), " " + name);
  const out = h("div", { id: "view-result" });
  const run = guard(async (ev) => {
    if (ev) ev.preventDefault();
    if (!sel.value) throw new Error("This database has no views");
    const [dd, v] = sel.value.split("/");
    const q = {};
    for (const [k, el] of Object.entries(fields)) if (el.value) q[k] = el.value;
    for (const [k, el] of Object.entries(flags)) if (el.checked) q[k] = "true";
    const res = await api("GET", `/${enc(db)}/_design/${enc(dd)}/_view/${enc(v)}` + qs(q));
    out.replaceChildren(h("p", { class: "muted" }, `${res.rows.length} rows` + (res.total_rows !== undefined ? ` of ${res.total_rows}, offset ${res.offset}` : "")),
      table(["Key", "Value", "ID"], res.rows.map((r) => h("tr", {}, h("td", {}, JSON.stringify(r.key)), h("td", {}, JSON.stringify(r.value)), h("td", {}, r.id || "")))));
  });
  render(dbTabs(db, "views"),
    h("form", { class: "bar", onsubmit: run }, sel, field("key"), field("startkey"), field("endkey"), field("limit", "limit"), field("skip", "skip"),
      field("group_level", "group_level"), flag("reduce"), flag("group"), flag("descending"), flag("include_docs"),
      h("button", { class: "primary", type: "submit", id: "run-view" }, "Run")),
    h("p", { class: "muted" }, "Values are JSON, as in the query string (e.g. startkey \"a\", key [1,2])."), out);
  if (params.get("v")) run();
}

async function findPage(db) {
  const area = jsonArea({ selector: {}, limit: 25 }, { id: "find-json" });
  const out = h("div", { id: "find-result" });
  const go = (what) => guard(async () => {
    const body = parseJsonArea(area);
    const res = await api("POST", `/${enc(db)}/${what}`, body);
    out.replaceChildren(what === "_find"
      ? h("div", {}, h("p", { class: "muted" }, `${res.docs.length} documents` + (res.warning ? ` — ${res.warning}` : "")), h("pre", {}, json(res.docs)))
      : h("div", {}, h("p", {}, "Index used: ", h("strong", { id: "explain-index" }, `${res.index.ddoc || ""} ${res.index.name} (${res.index.type})`)), h("pre", {}, json(res))));
  });
  render(dbTabs(db, "find"), area,
    h("div", { class: "bar" }, h("button", { class: "primary", id: "run-find", onclick: go("_find") }, "Run query"),
      h("button", { id: "run-explain", onclick: go("_explain") }, "Explain")), out);
}

async function indexesPage(db) {
  const res = await api("GET", `/${enc(db)}/_index`);
  const area = jsonArea({ index: { fields: ["field"] }, name: "", type: "json" }, { id: "index-json" });
  area.classList.add("short");
  render(dbTabs(db, "indexes"),
    table(["Name", "Design document", "Type", "Fields", ""], res.indexes.map((ix) => h("tr", {},
      h("td", {}, ix.name), h("td", {}, ix.ddoc || ""), h("td", {}, ix.type), h("td", {}, JSON.stringify(ix.def.fields)),
      h("td", {}, ix.ddoc ? h("button", { class: "danger", onclick: guard(async () => {
        await api("DELETE", `/${enc(db)}/_index/${enc(ix.ddoc.slice(8))}/json/${enc(ix.name)}`);
        flash(`Deleted index ${ix.name}`);
        route();
      }) }, "Delete") : "")))),
    h("h2", {}, "New index"), area,
    h("div", { class: "bar" }, h("button", { class: "primary", id: "create-index", onclick: guard(async () => {
      const body = parseJsonArea(area);
      if (!body.name) delete body.name;
      const r = await api("POST", `/${enc(db)}/_index`, body);
      flash(`Index ${r.name}: ${r.result}`);
      route();
    }) }, "Create index")));
}

async function securityPage(db) {
  const sec = await api("GET", `/${enc(db)}/_security`);
  const area = jsonArea(Object.assign({ admins: { names: [], roles: [] }, members: { names: [], roles: [] } }, sec), { id: "security-json" });
  render(dbTabs(db, "security"),
    h("p", { class: "muted" }, "Members may read and write documents; admins also change design documents and this object. With no members, only admins have access (couchpy's default)."),
    area, h("div", { class: "bar" }, h("button", { class: "primary", id: "save-security", onclick: guard(async () => {
      await api("PUT", `/${enc(db)}/_security`, parseJsonArea(area));
      flash("Security saved");
    }) }, "Save")));
}

async function infoPage(db) {
  const info = await api("GET", "/" + enc(db));
  render(dbTabs(db, "info"), h("pre", { id: "db-info" }, json(info)),
    h("div", { class: "bar" }, h("button", { id: "compact-db", onclick: guard(async () => {
      await api("POST", `/${enc(db)}/_compact`, {});
      flash("Compaction started; see Active tasks");
    }) }, "Compact")));
}

// ------------------------------------------------------------------ node pages

async function replicationPage() {
  const [docs, jobs] = await Promise.all([api("GET", "/_scheduler/docs?limit=200"), api("GET", "/_scheduler/jobs?limit=200")]);
  const src = h("input", { type: "text", id: "rep-source", placeholder: "source: database name or URL" });
  const tgt = h("input", { type: "text", id: "rep-target", placeholder: "target: database name or URL" });
  const cont = h("input", { type: "checkbox", id: "rep-continuous" });
  const create = h("input", { type: "checkbox", id: "rep-create", checked: true });
  render(h("h1", {}, "Replication"),
    h("form", { class: "bar", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      const doc = { source: src.value, target: tgt.value, continuous: cont.checked, create_target: create.checked };
      const r = await api("POST", "/_replicator", doc);
      flash(`Replication ${r.id} created`);
      route();
    }) }, src, tgt, h("label", {}, cont, " continuous"), h("label", {}, create, " create target"),
    h("button", { class: "primary", type: "submit", id: "start-replication" }, "Start")),
    h("p", { class: "muted" }, "A name without a scheme is a database of this server; a URL (with credentials for a remote server) is any CouchDB-compatible peer."),
    h("h2", {}, "_replicator documents"),
    table(["Document", "Source", "Target", "State", "Info", ""], (docs.docs || []).map((d) => h("tr", { "data-doc": d.doc_id },
      h("td", {}, d.doc_id), h("td", {}, d.source || ""), h("td", {}, d.target || ""), h("td", { class: "state" }, d.state || ""),
      h("td", { class: "muted" }, d.info ? JSON.stringify(d.info) : ""),
      h("td", {}, h("button", { class: "danger", onclick: guard(async () => {
        const cur = await api("GET", "/_replicator/" + enc(d.doc_id));
        await api("DELETE", "/_replicator/" + enc(d.doc_id) + qs({ rev: cur._rev }));
        flash(`Stopped ${d.doc_id}`);
        route();
      }) }, "Stop and delete"))))),
    h("h2", {}, "Running jobs"),
    table(["Job", "Source", "Target", "Started", "Last event"], (jobs.jobs || []).map((j) => h("tr", {},
      h("td", {}, j.id), h("td", {}, j.source), h("td", {}, j.target), h("td", {}, j.start_time || ""),
      h("td", { class: "muted" }, j.history && j.history[0] ? j.history[0].type : "")))));
}

async function tasksPage() {
  const tasks = await api("GET", "/_active_tasks");
  render(h("h1", {}, "Active tasks"), h("p", { class: "muted" }, "Refreshes every 2 seconds."),
    table(["Type", "Database", "Design / source", "Progress", "Done", "Started", "Updated"], tasks.map((t) => h("tr", { class: "task" },
      h("td", {}, t.type), h("td", {}, t.database || ""), h("td", {}, t.design_document || t.source || ""),
      h("td", {}, typeof t.progress === "number" ? h("span", {}, progressBar(t.progress), ` ${t.progress}%`) : ""),
      h("td", { class: "num" }, t.changes_done !== undefined ? `${t.changes_done} / ${t.total_changes}` : (t.docs_written !== undefined ? `${t.docs_written} written` : "")),
      h("td", {}, new Date(t.started_on * 1000).toLocaleTimeString()), h("td", {}, new Date(t.updated_on * 1000).toLocaleTimeString())))));
  refreshTimer = setTimeout(() => { if (location.hash === "#/tasks") route(); }, 2000);
}

function progressBar(p) {
  const bar = h("span", {});
  bar.style.width = Math.max(0, Math.min(100, p)) + "%";
  return h("span", { class: "progress" }, bar);
}

async function usersPage() {
  const res = await api("GET", "/_users/_all_docs?include_docs=true");
  const users = res.rows.filter((r) => r.id.startsWith("org.couchdb.user:")).map((r) => r.doc);
  const name = h("input", { type: "text", id: "user-name", placeholder: "name" });
  const pass = h("input", { type: "password", id: "user-password", placeholder: "password" });
  const roles = h("input", { type: "text", id: "user-roles", placeholder: "roles, comma-separated" });
  render(h("h1", {}, "Users"),
    table(["Name", "Roles", ""], users.map((u) => h("tr", { "data-user": u.name },
      h("td", {}, u.name), h("td", {}, (u.roles || []).join(", ")),
      h("td", {}, h("button", { class: "danger", onclick: guard(async () => {
        if (!confirm(`Delete user ${u.name}?`)) return;
        await api("DELETE", "/_users/" + enc(u._id) + qs({ rev: u._rev }));
        route();
      }) }, "Delete"))))),
    h("h2", {}, "New user"),
    h("form", { class: "bar", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      const doc = { _id: "org.couchdb.user:" + name.value, name: name.value, type: "user", password: pass.value,
        roles: roles.value.split(",").map((s) => s.trim()).filter(Boolean) };
      await api("PUT", "/_users/" + enc(doc._id), doc);
      flash(`Created ${name.value}`);
      route();
    }) }, name, pass, roles, h("button", { class: "primary", type: "submit", id: "create-user" }, "Create")),
    h("p", { class: "muted" }, "The password is stored only as a salted PBKDF2 hash."));
}

async function configPage() {
  const cfg = await api("GET", "/_node/_local/_config");
  const rows = [];
  for (const [section, values] of Object.entries(cfg)) {
    for (const [key, value] of Object.entries(values)) {
      const input = h("input", { type: "text", value: section === "admins" ? "(hashed)" : value, disabled: section === "admins" });
      rows.push(h("tr", { "data-key": `${section}/${key}` }, h("td", {}, section), h("td", {}, key), h("td", {}, input),
        h("td", {}, section === "admins" ? "" : h("button", { onclick: guard(async () => {
          await api("PUT", `/_node/_local/_config/${enc(section)}/${enc(key)}`, input.value);
          flash(`${section}/${key} = ${input.value}`);
        }) }, "Save"))));
    }
  }
  const s = h("input", { type: "text", id: "cfg-section", placeholder: "section" });
  const k = h("input", { type: "text", id: "cfg-key", placeholder: "key" });
  const v = h("input", { type: "text", id: "cfg-value", placeholder: "value" });
  render(h("h1", {}, "Configuration"),
    h("form", { class: "bar", onsubmit: guard(async (ev) => {
      ev.preventDefault();
      await api("PUT", `/_node/_local/_config/${enc(s.value)}/${enc(k.value)}`, v.value);
      flash(`${s.value}/${k.value} = ${v.value}`);
      route();
    }) }, s, k, v, h("button", { class: "primary", type: "submit", id: "cfg-add" }, "Set")),
    table(["Section", "Key", "Value", ""], rows));
}

async function metricsPage() {
  const [stats, sys] = await Promise.all([api("GET", "/_node/_local/_stats"), api("GET", "/_node/_local/_system")]);
  const c = stats.couchdb;
  const rt = c.request_time.value;
  const codes = Object.entries(c.httpd_status_codes).filter(([, v]) => v.value > 0);
  const methods = Object.entries(c.httpd_request_methods).filter(([, v]) => v.value > 0);
  render(h("h1", {}, "Metrics"),
    h("div", { class: "grid2" },
      h("div", {}, h("h2", {}, "Node"), table(["", ""], [
        ["Uptime", `${sys.uptime} s`], ["Memory (RSS)", bytes(sys.memory.total)], ["Open files", sys.open_files],
        ["Open databases", sys.open_databases], ["Requests", c.httpd.requests.value],
        ["Request time p50 / p99", `${rt.median.toFixed(2)} / ${rt.percentile[4][1].toFixed(2)} ms`],
      ].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", { class: "num", id: "metric-" + k.split(" ")[0].toLowerCase() }, v))))),
      h("div", {}, h("h2", {}, "Responses"), table(["Status", "Count"], codes.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, v.value)))),
        h("h2", {}, "Methods"), table(["Method", "Count"], methods.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, v.value)))))),
    h("p", { class: "muted" }, "Prometheus scrapes ", h("a", { href: "/_node/_local/_prometheus" }, "/_node/_local/_prometheus"), "."));
}

// ------------------------------------------------------------------ router

let refreshTimer = null;

async function route() {
  clearTimeout(refreshTimer);
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === "#/" + (parts[0] === "db" ? "" : parts[0] || ""));
  if (parts[0] !== "login" && !(session && session.userCtx && session.userCtx.name)) {
    const name = await loadSession().catch(() => null);
    if (!name) { location.hash = "#/login"; return; }
  }
  try {
    if (parts[0] === "login") return loginPage();
    if (parts.length === 0) return await databasesPage(params);
    if (parts[0] === "db") {
      const db = parts[1];
      const rest = parts.slice(2);
      if (rest.length === 0) return await documentsPage(db, params);
      if (rest[0] === "doc") return await documentPage(db, rest.slice(1).join("/"));
      if (rest[0] === "new") return await documentPage(db, null);
      if (rest[0] === "views") return await viewsPage(db, params);
      if (rest[0] === "find") return await findPage(db);
      if (rest[0] === "indexes") return await indexesPage(db);
      if (rest[0] === "design") { params.set("design", "1"); return await documentsPage(db, params); }
      if (rest[0] === "security") return await securityPage(db);
      if (rest[0] === "info") return await infoPage(db);
    }
    if (parts[0] === "replication") return await replicationPage();
    if (parts[0] === "tasks") return await tasksPage();
    if (parts[0] === "users") return await usersPage();
    if (parts[0] === "config") return await configPage();
    if (parts[0] === "metrics") return await metricsPage();
    render(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Databases")));
  } catch (e) {
    render(h("h1", { class: "err" }, "Error"), h("p", { id: "error" }, e.message));
  }
}

// Keyboard: "/" focuses the page's filter box; "g" then a letter goes to a top-level page.
let pendingG = false;
document.addEventListener("keydown", (ev) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "/") {
    const box = document.querySelector("#db-filter, #doc-filter");
    if (box) { ev.preventDefault(); box.focus(); }
  } else if (ev.key === "g") {
    pendingG = true;
    setTimeout(() => { pendingG = false; }, 1000);
  } else if (pendingG) {
    const link = document.querySelector(`#nav a[data-key="${ev.key}"]`);
    if (link) location.hash = link.getAttribute("href");
    pendingG = false;
  }
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
