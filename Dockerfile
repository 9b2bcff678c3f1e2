# couchpy: a CouchDB-compatible server. Data in /data; admin credentials printed on first start
# (or set them: mount a couchpy.ini with an [admins] section; plain-text passwords are hashed on start).
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 couchpy \
 && mkdir /data && chown couchpy:couchpy /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY couchpy ./couchpy
COPY couchpy_cli ./couchpy_cli
COPY http_api ./http_api
COPY replicator ./replicator
RUN pip install --no-cache-dir .

USER couchpy
VOLUME ["/data"]
EXPOSE 5984
# Inside a container the server must listen on all interfaces to be reachable through -p.
CMD ["couchpy", "serve", "--host", "0.0.0.0", "--port", "5984", "--data-dir", "/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:5984/_up', timeout=2).status == 200 else 1)"
