import pytest

from tests.search.elastic_server import _fake_elastic_server, fake_elastic  # noqa: F401


@pytest.fixture(autouse=True)
def search_index(settings, tmp_path):
    """Every search test gets its own embedded index file and no outside servers."""
    settings.SEARCH_INDEX_PATH = tmp_path / "search-index.sqlite3"
    settings.ELASTIC_URL = ""
    settings.EMBEDDINGS_URL = ""
    yield settings.SEARCH_INDEX_PATH
