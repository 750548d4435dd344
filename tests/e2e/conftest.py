"""Browser tests (`make e2e`): the real app in subprocesses, a real Chromium, fake provider and model servers.

Every test here is marked `e2e` and skipped unless pytest runs with `-m e2e`, so
`make test` never starts a browser.  Each test module gets its own installation
(a copy of one migrated DATA_DIR, its own fake provider, its own port); the fake
model server is shared.  A test fails on any browser console error, uncaught page
error, or 5xx answer from the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.fakes.llm_server import FakeLLM
from tests.fakes.reddit_server import FakeReddit

from .harness import (ADMIN_PASSWORD, ADMIN_USERNAME, CHROMIUM, CHROMIUM_FLAGS, VIEWPORT, App, BrowserProblems,
                      drop_database, expect, sync_playwright)


def pytest_collection_modifyitems(config, items):
    expr = config.option.markexpr or ""
    if re.search(r"(?<!not )\be2e\b", expr):
        return
    skip = pytest.mark.skip(reason="browser test: run with `make e2e` (pytest -m e2e)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@dataclass
class Stack:
    app: App
    provider: FakeReddit
    llm: FakeLLM
    storage_state: dict | None = None


@pytest.fixture(scope="session")
def _template(tmp_path_factory):
    """A migrated DATA_DIR with the admin (and, on MariaDB, a template database), copied for every module."""
    path = tmp_path_factory.mktemp("e2e-template") / "data"
    database = App.prepare_template(path)
    yield path, database
    if database:
        drop_database(database)


@pytest.fixture(scope="session")
def e2e_llm():
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def browser():
    if sync_playwright is None:
        pytest.fail("the e2e extra is not installed: pip install -e '.[e2e]' (make e2e does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(_template, tmp_path_factory, e2e_llm):
    provider = FakeReddit()
    template_dir, template_database = _template
    app = App.from_template(template_dir, tmp_path_factory.mktemp("e2e-app") / "data",
                            template_database=template_database,
                            provider_url=provider.url, llm_url=e2e_llm.url, llm_model=e2e_llm.model,
                            embeddings_dims=e2e_llm.dims, client_id=provider.client_id,
                            client_secret=provider.client_secret, media_host=provider.host)
    provider.redirect_uri = app.redirect_uri
    try:
        app.start()
        yield Stack(app=app, provider=provider, llm=e2e_llm)
    finally:
        app.stop()
        app.drop_database()
        provider.close()


def _new_page(browser, stack: Stack, *, signed_in: bool):
    if signed_in and stack.storage_state is None:
        context = browser.new_context(base_url=stack.app.url, viewport=VIEWPORT)
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill(ADMIN_USERNAME)
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).not_to_have_url(re.compile(r"/login/"))
        stack.storage_state = context.storage_state()
        context.close()
    context = browser.new_context(base_url=stack.app.url, viewport=VIEWPORT,
                                  storage_state=stack.storage_state if signed_in else None)
    context.set_default_timeout(15_000)
    page = context.new_page()
    return context, page, BrowserProblems(page)


@pytest.fixture
def _page_factory(browser, stack, request):
    opened = []
    allowed: list[str] = []  # patterns of console errors a test provokes on purpose
    log_start = len(stack.app.log_text())

    def open_page(*, signed_in: bool = True):
        context, page, problems = _new_page(browser, stack, signed_in=signed_in)
        opened.append((context, problems))
        return page

    open_page.allow = allowed.append
    yield open_page
    for context, _ in opened:
        context.close()
    problems = [p for _, pr in opened for p in pr.items if not any(re.search(a, p) for a in allowed)]
    new_log = stack.app.log_text()[log_start:]
    errors = [line for line in new_log.splitlines() if re.search(r'" 5\d\d ', line)]
    if "Traceback (most recent call last)" in new_log:
        errors.append("traceback in the app log:\n" + new_log[new_log.index("Traceback"):][:3000])
    assert not problems, f"browser problems: {problems}"
    assert not errors, f"the app answered 5xx or crashed: {errors}"


@pytest.fixture
def page(_page_factory):
    """A signed-in page on this module's app; the test fails on console errors or 5xx."""
    return _page_factory(signed_in=True)


@pytest.fixture
def allow_console_error(_page_factory):
    """`allow_console_error(regex)`: a console error the test provokes on purpose (a refused request)."""
    return _page_factory.allow


@pytest.fixture
def anonymous_page(_page_factory):
    """A page with no session (first visit)."""
    return _page_factory(signed_in=False)
