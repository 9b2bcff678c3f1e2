"""End-to-end smoke test of the core API through a real server subprocess."""


async def test_put_get_changes(client, db):
    async with client.put(f"/{db}/a", json={"x": 1}) as r:
        assert r.status == 201
        rev = (await r.json())["rev"]
        assert r.headers["ETag"] == f'"{rev}"'
    async with client.get(f"/{db}/a") as r:
        assert (await r.json()) == {"_id": "a", "_rev": rev, "x": 1}
    async with client.get(f"/{db}/_changes") as r:
        body = await r.json()
        assert [row["id"] for row in body["results"]] == ["a"]


async def test_deleting_a_database_ends_its_continuous_feeds(client, dbname):
    import asyncio

    async with client.put(f"/{dbname}") as r:
        assert r.status == 201

    async def feed():
        async with client.get(f"/{dbname}/_changes", params={"feed": "continuous", "heartbeat": "200"}) as r:
            assert r.status == 200
            return await r.read()

    task = asyncio.create_task(feed())
    await asyncio.sleep(0.3)
    async with client.delete(f"/{dbname}") as r:
        assert r.status == 200
    body = await asyncio.wait_for(task, 5)
    assert b"last_seq" in body
    async with client.get("/") as r:  # and the server is fine
        assert r.status == 200


async def test_sigterm_with_open_feeds_stops_promptly(tmp_path):
    """Open continuous feeds end on shutdown instead of holding the server for the grace period."""
    import asyncio
    import time

    import aiohttp

    from tests.serverproc import CouchpyServer

    srv = CouchpyServer(tmp_path)
    srv.start()
    try:
        async with aiohttp.ClientSession(auth=srv.auth) as s:
            async with s.put(f"{srv.base}/feeds") as r:
                assert r.status == 201
            resps = [await s.get(f"{srv.base}/feeds/_changes", params={"feed": "continuous", "heartbeat": "1000"})
                     for _ in range(3)]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            srv.proc.terminate()
            await asyncio.get_running_loop().run_in_executor(None, srv.proc.wait, 20)
            assert time.monotonic() - started < 5
            assert srv.proc.returncode == 0
            for r in resps:
                r.close()
    finally:
        srv.stop()
