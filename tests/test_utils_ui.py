"""The admin UI at /_utils/, driven in a real browser: Debian's Chromium under Playwright (the system
browser, never a downloaded one), against a real server. Each page is used as an operator would,
and the result is checked through the HTTP API; screenshots of the main pages go to docs/img/."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.serverproc import CouchpyServer

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "img"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _call(server, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.base + path, data=data, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{server.password}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    with CouchpyServer(tmp_path_factory.mktemp("ui")) as srv:
        # a 10,000-document database, a conflicted document, a view, an index
        for start in range(0, 10_000, 2000):
            docs = [{"_id": f"doc{i:05}", "n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(start, start + 2000)]
            if start == 0:
                assert _call(srv, "PUT", "/big")[0] == 201
            assert _call(srv, "POST", "/big/_bulk_docs", {"docs": docs})[0] == 201
        assert _call(srv, "PUT", "/big/_design/stats", {"views": {"by_kind": {
            "map": "function(doc){ if (doc.kind) emit(doc.kind, doc.n); }", "reduce": "_sum"}}})[0] == 201
        leaves = [
            {"_id": "clash", "_rev": "2-aaaa", "side": "left", "_revisions": {"start": 2, "ids": ["aaaa", "root"]}},
            {"_id": "clash", "_rev": "2-bbbb", "side": "right", "_revisions": {"start": 2, "ids": ["bbbb", "root"]}},
        ]
        assert _call(srv, "POST", "/big/_bulk_docs", {"docs": leaves, "new_edits": False})[0] == 201
        yield srv


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed for the UI tests (apt-get install chromium)", pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser, ui_server) -> Page:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    p = ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.on("dialog", lambda d: d.accept())
    p.goto(ui_server.base + "/_utils/")
    p.fill("#login-name", "admin")
    p.fill("#login-password", ui_server.password)
    p.click("button[type=submit]")
    expect(p.locator("h1")).to_have_text("Databases")
    yield p
    ctx.close()
    assert errors == []


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"ui-{name}.png"))


def test_wrong_password_is_refused(browser, ui_server):
    ctx = browser.new_context()
    p = ctx.new_page()
    p.goto(ui_server.base + "/_utils")  # redirects to /_utils/
    p.fill("#login-name", "admin")
    p.fill("#login-password", "wrong")
    p.click("button[type=submit]")
    expect(p.locator(".login .err")).to_contain_text("Name or password is incorrect")
    shot(p, "login")
    ctx.close()


def test_databases_create_list_page_and_delete(page, ui_server):
    for i in range(25):
        _call(ui_server, "PUT", f"/many-{i:02}")
    page.reload()
    expect(page.locator("tr[data-db=big] td").nth(1)).to_have_text("10002")  # 10,000 + design doc + clash
    shot(page, "databases")
    page.click("#next-page")
    expect(page.locator("tr[data-db]").first).to_be_visible()
    page.goto(ui_server.base + "/_utils/#/")
    expect(page.locator("#db-filter")).to_have_value("")  # the first page again
    page.fill("#new-db", "made-in-ui")
    page.click("text=Create database")
    expect(page.locator("h1")).to_contain_text("made-in-ui")
    assert _call(ui_server, "GET", "/made-in-ui")[0] == 200
    page.goto(ui_server.base + "/_utils/#/?start=made-in-ui")
    page.locator("tr[data-db=made-in-ui] button.danger").click()
    expect(page.locator("tr[data-db=made-in-ui]")).to_have_count(0)
    assert _call(ui_server, "GET", "/made-in-ui")[0] == 404


def test_documents_paging_and_editing(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/db/big")
    expect(page.locator("#total-rows")).to_contain_text("10002 rows")
    first = page.locator("tbody tr td a").first.inner_text()
    page.click("#next-page")
    expect(page.locator("tbody tr td a").first).not_to_have_text(first)
    page.fill("#doc-filter", "doc05000")
    page.press("#doc-filter", "Enter")
    expect(page.locator("tbody tr td a").first).to_have_text("doc05000")
    shot(page, "documents")
    page.click("text=doc05000")
    area = page.locator("#doc-json")
    doc = json.loads(area.input_value())
    doc["edited"] = "in the browser"
    area.fill("{ not json")
    expect(area).to_have_class("invalid")
    page.click("#save-doc")
    expect(page.locator("#flash .error")).to_contain_text("Invalid JSON")
    area.fill(json.dumps(doc))
    area.press("Control+s")
    expect(page.locator("#flash")).to_contain_text("Saved doc05000 at 2-")
    status, stored = _call(ui_server, "GET", "/big/doc05000")
    assert status == 200 and stored["edited"] == "in the browser"
    shot(page, "document")


def test_new_document_and_delete(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/db/big/new")
    page.locator("#doc-json").fill(json.dumps({"_id": "from-ui", "x": 1}))
    page.click("#save-doc")
    expect(page.locator("#flash")).to_contain_text("Saved from-ui")
    assert _call(ui_server, "GET", "/big/from-ui")[1]["x"] == 1
    page.click("#delete-doc")
    # the flash comes once the DELETE is answered (the document page's h1 names "big" already)
    expect(page.locator("#flash")).to_contain_text("Deleted from-ui")
    assert _call(ui_server, "GET", "/big/from-ui")[0] == 404


def test_conflicts_shown_and_a_winner_picked(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/db/big/doc/clash")
    expect(page.locator("#conflicts h2")).to_contain_text("1 conflicting revision")
    expect(page.locator("#conflicts .conflict")).to_have_count(2)
    shot(page, "conflict")
    page.locator(".conflict[data-rev='2-aaaa'] button.pick").click()  # keep the losing side
    expect(page.locator("#flash")).to_contain_text("Kept 2-aaaa")
    status, doc = _call(ui_server, "GET", "/big/clash?conflicts=true")
    assert doc["_rev"] == "2-aaaa" and doc["side"] == "left" and "_conflicts" not in doc


def test_attachment_upload_and_download(page, ui_server, tmp_path):
    _call(ui_server, "PUT", "/big/with-att", {"a": 1})
    page.goto(ui_server.base + "/_utils/#/db/big/doc/with-att")
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello from the browser\n")
    page.set_input_files("#att-file", str(f))
    page.click("#upload-att")
    expect(page.locator("#attachments tbody tr")).to_have_count(1)
    expect(page.locator("#attachments")).to_contain_text("hello.txt")
    with page.expect_download() as dl:
        page.click("#attachments a")
    assert Path(dl.value.path()).read_bytes() == b"hello from the browser\n"


def test_view_query_with_parameters(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/db/big/views")
    page.select_option("#view-select", "stats/by_kind")
    page.check("input[name=group]")
    page.click("#run-view")
    rows = page.locator("#view-result tbody tr")
    expect(rows).to_have_count(2, timeout=120_000)  # the first query builds the index of 10,000 docs
    expect(rows.nth(0)).to_contain_text('"even"')
    expect(rows.nth(0)).to_contain_text(str(sum(range(0, 10_000, 2))))
    shot(page, "views")


def test_mango_find_explain_and_indexes(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/db/big/indexes")
    page.locator("#index-json").fill(json.dumps({"index": {"fields": ["n"]}, "name": "by-n", "type": "json"}))
    page.click("#create-index")
    expect(page.locator("table")).to_contain_text("by-n")
    page.goto(ui_server.base + "/_utils/#/db/big/find")
    page.locator("#find-json").fill(json.dumps({"selector": {"n": {"$gte": 9998}}}))
    page.click("#run-find")
    expect(page.locator("#find-result")).to_contain_text("2 documents", timeout=120_000)
    page.click("#run-explain")
    expect(page.locator("#explain-index")).to_contain_text("by-n")
    shot(page, "mango")


def test_security_editor_saves(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/db/big/security")
    sec = {"admins": {"names": [], "roles": []}, "members": {"names": ["alice"], "roles": ["staff"]}}
    page.locator("#security-json").fill(json.dumps(sec))
    page.click("#save-security")
    expect(page.locator("#flash")).to_contain_text("Security saved")
    assert _call(ui_server, "GET", "/big/_security")[1]["members"] == sec["members"]
    _call(ui_server, "PUT", "/big/_security", {})


def test_users_page_creates_a_user(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/users")
    page.fill("#user-name", "bob")
    page.fill("#user-password", "bobs-password")
    page.fill("#user-roles", "staff, ops")
    page.click("#create-user")
    expect(page.locator("tr[data-user=bob]")).to_contain_text("staff, ops")
    status, doc = _call(ui_server, "GET", "/_users/org.couchdb.user:bob")
    assert status == 200 and doc["roles"] == ["staff", "ops"]
    shot(page, "users")


def test_replication_started_and_seen_in_the_scheduler(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/replication")
    page.fill("#rep-source", "big")
    page.fill("#rep-target", "big-copy")
    page.click("#start-replication")
    expect(page.locator("#flash")).to_contain_text("created")
    row = page.locator("tr[data-doc]").first
    expect(row).to_be_visible()
    for _ in range(120):  # the page shows the scheduler's state as of its load: reload until done
        page.reload()
        if page.locator("tr[data-doc] .state").first.inner_text() == "completed":
            break
        page.wait_for_timeout(500)
    expect(page.locator("tr[data-doc] .state").first).to_have_text("completed")
    assert _call(ui_server, "GET", "/big-copy")[1]["doc_count"] >= 10_000
    shot(page, "replication")


def test_active_tasks_config_and_metrics_pages(page, ui_server):
    page.goto(ui_server.base + "/_utils/#/tasks")
    expect(page.locator("h1")).to_have_text("Active tasks")
    shot(page, "tasks")
    page.goto(ui_server.base + "/_utils/#/config")
    page.fill("#cfg-section", "uitest")
    page.fill("#cfg-key", "colour")
    page.fill("#cfg-value", "teal")
    page.click("#cfg-add")
    expect(page.locator("tr[data-key='uitest/colour'] input")).to_have_value("teal")
    assert _call(ui_server, "GET", "/_node/_local/_config/uitest/colour") == (200, "teal")
    expect(page.locator("tr[data-key^='admins/'] input")).to_have_value("(hashed)")
    shot(page, "config")
    page.goto(ui_server.base + "/_utils/#/metrics")
    expect(page.locator("#metric-requests")).not_to_have_text("0")
    shot(page, "metrics")


def test_keyboard_navigation(page, ui_server):
    page.keyboard.press("g")
    page.keyboard.press("m")
    expect(page.locator("h1")).to_have_text("Metrics")
    page.keyboard.press("g")
    page.keyboard.press("d")
    expect(page.locator("h1")).to_have_text("Databases")
    page.keyboard.press("/")
    expect(page.locator("#db-filter")).to_be_focused()


def test_static_files_are_confined_to_the_ui_folder(ui_server):
    for path in ("/_utils/%2e%2e%2fapp.py", "/_utils/..%2futils.py", "/_utils/utils.py", "/_utils/nope.js"):
        try:
            urllib.request.urlopen(ui_server.base + path, timeout=5)
            raise AssertionError(path)
        except urllib.error.HTTPError as e:
            assert e.code == 404, (path, e.code)
