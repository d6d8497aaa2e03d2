"""The tests' own servers (redis-server, moto's S3) start on another port when the one
free_port() chose was taken before they bound it, as when two pytest workers start
servers at the same moment."""

from __future__ import annotations

import socket

import httpx

from redis_server import RedisServer
from s3_server import S3Server


def test_a_taken_port_is_left_for_another() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        r = RedisServer()
        r.port, r.url = taken, f"redis://127.0.0.1:{taken}/0"
        with r:
            assert r.port != taken
            assert r.url.endswith(f":{r.port}/0")
            assert r.client().ping()

        s3 = S3Server()
        s3.port, s3.endpoint = taken, f"http://127.0.0.1:{taken}"
        with s3:
            assert s3.port != taken
            assert httpx.get(s3.endpoint + "/moto-api/", timeout=5).status_code == 200
            assert (
                s3.client().head_bucket(Bucket=s3.bucket)["ResponseMetadata"]["HTTPStatusCode"]
                == 200
            )
