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
