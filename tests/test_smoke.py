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
