"""Automatic compaction (couchpy.smoosh): channel rules as CouchDB's smoosh documents them, and a
server that compacts a bloated database by itself."""

from __future__ import annotations

import asyncio
import datetime
import math
import time

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

import couchpy
from couchpy import smoosh
from couchpy.config import Config
from couchpy.views import manager as views

MB = 1 << 20


def test_default_channels_are_couchdbs():
    chans = smoosh.channels(Config())
    assert [(c.name, c.priority, c.min_priority, c.min_size) for c in chans] == [
        ("ratio_dbs", "ratio", 2.0, MB), ("slack_dbs", "slack", 536870912.0, MB)]


def test_ratio_and_slack_thresholds():
    ratio, slack = smoosh.channels(Config())
    assert ratio.wants({"file": 10 * MB, "active": 5 * MB}, 1) == 2.0
    assert ratio.wants({"file": 10 * MB, "active": 6 * MB}, 1) is None
    assert ratio.wants({"file": MB // 2, "active": 1}, 1) is None  # below min_size
    assert slack.wants({"file": 2000 * MB, "active": 1400 * MB}, 1) == 600 * MB
    assert slack.wants({"file": 2000 * MB, "active": 1600 * MB}, 1) is None


def test_settings_override_and_min_changes():
    cfg = Config()
    cfg.set("smoosh", "db_channels", "upgrade_dbs,mine")
    cfg.set("smoosh.mine", "priority", "slack")
    cfg.set("smoosh.mine", "min_priority", "100")
    cfg.set("smoosh.mine", "min_size", "0")
    cfg.set("smoosh.mine", "min_changes", "10")
    cfg.set("smoosh.mine", "max_size", "infinity")
    (mine,) = smoosh.channels(cfg)
    assert (mine.priority, mine.min_priority, mine.min_size, mine.max_size) == ("slack", 100, 0, math.inf)
    assert mine.wants({"file": 500, "active": 300}, 10) == 200
    assert mine.wants({"file": 500, "active": 300}, 9) is None


times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(start=times, end=times, now=times)
def test_window_contains_exactly_the_minutes_from_start_to_end(start, end, now):
    ch = smoosh.Channel("c", window_from=start, window_to=end)
    minutes = lambda t: t.hour * 60 + t.minute  # noqa: E731
    if start == end:
        assert ch.in_window(now)
    else:
        # minutes since the window opened, modulo a day, fall inside its length
        assert ch.in_window(now) == ((minutes(now) - minutes(start)) % 1440 < (minutes(end) - minutes(start)) % 1440)


def test_pick_respects_channel_order_and_windows():
    cfg = Config()
    cfg.set("smoosh.ratio_dbs", "from", "01:00")
    cfg.set("smoosh.ratio_dbs", "to", "02:00")
    chans = smoosh.channels(cfg)
    sizes = {"file": 3000 * MB, "active": 1000 * MB}  # both channels want it; ratio comes first
    assert smoosh.pick(chans, sizes, 1, datetime.time(1, 30))[0].name == "ratio_dbs"
    # outside its window the first channel holds the database: no other channel takes it
    assert smoosh.pick(chans, sizes, 1, datetime.time(3, 0)) is None


async def test_a_bloated_database_is_compacted_automatically(new_server):
    # off while the database is written, so the daemon judges the whole bloat at once (compacting
    # half-way would leave a ratio below the threshold, and nothing more to do)
    srv = new_server(config={"smoosh": {"check_interval": "0.2", "enabled": "false"},
                             "smoosh.ratio_dbs": {"min_priority": "1.8", "min_size": "0"}})
    async with aiohttp.ClientSession(base_url=srv.base, auth=srv.auth) as s:
        async with s.put("/bloated") as r:
            assert r.status == 201
        async with s.put("/quiet") as r:
            assert r.status == 201
        async with s.put("/quiet/one", json={"v": 1}) as r:
            assert r.status == 201
        revs: dict[str, str] = {}
        for gen in range(4):
            docs = [{"_id": f"d{i}", "text": "t" * 400, **({"_rev": revs[f"d{i}"]} if gen else {})}
                    for i in range(1500)]
            async with s.post("/bloated/_bulk_docs", json={"docs": docs}) as r:
                revs.update({row["id"]: row["rev"] for row in await r.json()})
        async with s.get("/bloated") as r:
            bloated = (await r.json())["sizes"]
        assert bloated["file"] / bloated["active"] >= 1.8  # the channel wants it
        async with s.put("/_node/_local/_config/smoosh/enabled", json="true") as r:
            assert r.status == 200, await r.text()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with s.get("/bloated") as r:
                sizes = (await r.json())["sizes"]
            if sizes["file"] < bloated["file"] / 3:
                break
            await asyncio.sleep(0.2)
        # compacted: most of the file given back, and the channel no longer wants the database
        assert sizes["file"] < bloated["file"] / 3, (bloated, sizes)
        assert sizes["file"] / sizes["active"] < 1.8, sizes
        async with s.get("/bloated/d7") as r:
            assert (await r.json())["_rev"] == revs["d7"]
        # a database below the threshold is left alone: its file is the same environment
        dbdir = next(p for p in (srv.data_dir / "dbs").iterdir() if p.name.startswith("quiet."))
        assert (dbdir / "main" / "data.mdb").stat().st_ctime < time.time() - 0.5


def test_view_channels_are_couchdbs():
    chans = smoosh.channels(Config(), "view_channels", smoosh.DEFAULT_VIEW_CHANNELS)
    assert [(c.name, c.priority, c.min_priority, c.min_size) for c in chans] == [
        ("ratio_views", "ratio", 2.0, MB), ("slack_views", "slack", 536870912.0, MB)]


async def test_a_bloated_view_index_is_compacted_automatically(tmp_path):
    node = couchpy.open(tmp_path / "data")
    try:
        node.config.set("smoosh.ratio_dbs", "min_priority", "1000")  # this test is about the index
        node.config.set("smoosh.ratio_views", "min_priority", "1.5")
        node.config.set("smoosh.ratio_views", "min_size", "0")
        db = node.create_db("v")
        await db.put({"_id": "_design/d", "views": {"v": {"map": "function(doc){ emit(doc.text, doc.n); }"}}})
        revs: dict[str, str] = {}
        daemon = smoosh.Daemon(node)
        for gen in range(3):
            docs = [{"_id": f"d{i}", "n": i, "text": f"{gen} " + "t" * 200,
                     **({"_rev": revs[f"d{i}"]} if gen else {})} for i in range(2000)]
            revs.update({row["id"]: row["rev"] for row in await db.bulk_docs(docs)})
            await views.query_view(node, db, "d", "v", {"limit": "1"}, True)
            if gen == 0:
                assert await daemon.check() is None  # a fresh index has nothing to give back
        ix = views.index_by_name(node, db, "d")
        bloated = ix.store.file_size()
        assert bloated / ix.store.used_bytes() >= 1.5
        assert await daemon.check() == f"v/{ix.spec.sig}"
        assert ix.store.file_size() < bloated * 0.75
        assert await daemon.check() is None  # nothing changed since
        rows = (await views.query_view(node, db, "d", "v", {"limit": "2"}, True))["rows"]
        assert [r["value"] for r in rows] == [0, 1] and rows[0]["key"].startswith("2 ")
    finally:
        await node.aclose()
