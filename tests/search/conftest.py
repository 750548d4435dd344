from tests.search.elastic_server import _fake_elastic_server, fake_elastic  # noqa: F401
