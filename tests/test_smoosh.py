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

from couchpy import smoosh
from couchpy.config import Config

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
    srv = new_server(config={"smoosh": {"check_interval": "0.2"},
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
