"""Local process fixtures: real daphne, PostgreSQL, Redis and nginx servers on loopback, a flaky
proxy, and a small API client. Used for development (`make run-stack`), by the tests
(`tests/`, `e2e/`) and by the benchmarks (`bench/`); the application itself never imports them.

    common    REPO, BIN, free_port, wait_until
    daphne    Site (a prepared database), DaphneServer, daphne_processes, ApiClient, feed_url
    postgres  PostgresServer, postgres_server (`python -m devstack.postgres -- COMMAND…`)
    redis     RedisServer, redis_server
    nginx     NginxServer (Debian's nginx, deploy/nginx.conf.template), render, PRODUCTION
    proxy     FlakyProxy (breaks connections on demand)

Nothing here imports `tests`: tests may build on these fixtures, never the other way round.
"""
