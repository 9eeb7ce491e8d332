"""axe-core in the real browser: every page, every role, no serious or critical accessibility violation.

The pages come from the app's route registry (as in the authorization matrix), so a new page is checked
automatically. axe-core is npm's package, installed once into .cache/axe-core (tests/axecore.py) and
evaluated in the page (``page.evaluate`` is not subject to the page's Content-Security-Policy).

Each distinct page is scanned once: many roles see the same content (an admin and an analyst, a
center's staff and its program manager), and axe's result depends on the DOM only. A role's first page
is always opened and scanned whole (its header and navigation, the same on every page of the role:
base.html). For every other page the server's HTML is fetched first with the role's session (no
rendering); when its ``<main>`` -- per-session tokens removed -- is one already scanned for any role,
the page is not opened in the browser again: the same HTML and the same scripts draw the same DOM. What
a whole-page scan could find only in the combination of one role's header with another role's content --
an id used twice in the document -- is checked on every page's HTML without axe.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest

from axecore import VERSION, axe_source
from browser.conftest import ARTIFACTS, CHROMIUM, sign_in
from browser.webseed import (
    NORTH,
    PASSWORD,
    USERS,
    add_equity_strata,
    add_measure_series,
    add_users,
    build_warehouse,
    live_server,
    make_app,
)
from chc_equity.web.security import route_registry

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not installed (apt-get install -y chromium chromium-driver)",
)
DOWNLOADS = (".csv", ".xlsx", ".zip", ".json")
# Rule sets checked: WCAG 2.0/2.1 A and AA plus axe's best practices (landmarks, one main, headings).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = ("serious", "critical")
# Per-session values in a rendered page: the CSRF token of the sign-out form (and of any other form).
SESSION_TOKENS = re.compile(r'(name="(?:csrf_token|login_csrf)"\s+value=")[^"]*(")')
MAIN = re.compile(r"<main\b.*</main>", re.DOTALL)
ID = re.compile(r"""\sid=["']([^"']+)["']""")


def content_key(html: str) -> str:
    """A hash of a page's ``<main>`` (server HTML) without per-session tokens."""
    main = MAIN.search(html)
    return hashlib.sha256(SESSION_TOKENS.sub(r"\1\2", main.group(0) if main else html).encode()).hexdigest()


def duplicate_ids(html: str) -> list[str]:
    ids = ID.findall(html)
    return sorted({i for i in ids if ids.count(i) > 1})


@pytest.fixture(scope="module")
def axe() -> str:
    source = axe_source()
    if source is None:
        pytest.skip(f"axe-core {VERSION} not obtainable: npm missing and nothing in .cache/axe-core")
    return source


@pytest.fixture(scope="module")
def app_and_ids(tmp_path_factory: pytest.TempPathFactory):
    from test_web_access import RECORD_IDS, _seed_improvement

    warehouse = build_warehouse(tmp_path_factory.mktemp("axe") / "wh.duckdb")
    add_measure_series(warehouse)
    add_equity_strata(warehouse)
    add_users(warehouse)
    app = make_app(warehouse)
    _seed_improvement(app)
    return app, RECORD_IDS


@pytest.fixture(scope="module")
def base_url(app_and_ids) -> Iterator[str]:
    with live_server(app_and_ids[0]) as url:
        yield url


def pages_for(app, ids: dict[str, dict[str, int]], user: str) -> list[str]:
    """Every GET page (not a download, not the API) the user may open, with their center filled in."""
    role, center = USERS[user]
    center = center or NORTH
    out = []
    for rule in route_registry(app):
        if rule.method != "GET" or rule.is_api or rule.path.endswith(DOWNLOADS) or rule.access is None:
            continue
        if rule.access.roles is None or role not in rule.access.roles or rule.path in ("/login", "/logout"):
            continue
        path = rule.path.replace("{center}", center).replace("{measure}", "CMS122")
        for name, value in ids.get(center, {}).items():
            path = path.replace("{" + name + "}", str(value))
        path = path.replace("{topic}", "funnel-plot")
        assert "{" not in path, f"no test value for {rule.path}"
        out.append(path)
    return sorted(set(out))


def _sign_in(browser, base_url: str, user: str):
    """Signed in through the form; lands on the role's home page (the voucher program's is /vouchers)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base_url}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: not url.endswith("/login"))
    return page


def _rendered(page) -> None:
    page.wait_for_function(  # charts drawn (or failed): axe must see the final page
        "() => [...document.querySelectorAll('.chart[data-spec]')]"
        ".every(c => c.classList.contains('rendered') || c.classList.contains('failed'))"
    )


def run_axe(page, axe: str) -> list[dict]:
    """Serious and critical violations on the page now shown (rule id, impact, first offending nodes)."""
    _rendered(page)
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe)
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        TAGS,
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"][:3]]}
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def test_login_page_has_no_serious_violations(browser, base_url: str, axe: str) -> None:
    page = browser.new_page()
    page.goto(f"{base_url}/login")
    assert run_axe(page, axe) == []
    page.close()


@pytest.fixture(scope="module")
def scanned() -> dict[str, str]:
    """Content already scanned by axe in this module: content key -> "user url" (first scan)."""
    return {}


@pytest.mark.parametrize("user", list(USERS))
def test_every_page_every_role_passes_axe(
    browser, base_url: str, app_and_ids, axe: str, scanned: dict[str, str], user: str
) -> None:
    app, ids = app_and_ids
    page = _sign_in(browser, base_url, user)
    found: dict[str, list] = {}
    urls = pages_for(app, ids, user)
    assert urls, user
    runs = 0
    for url in urls:
        fetched = page.request.get(f"{base_url}{url}")  # the role's cookies, no rendering
        assert fetched.status < 500, url
        html = fetched.text()
        if twice := duplicate_ids(html):
            found[url] = [{"id": "duplicate ids", "nodes": twice}]
        key = content_key(html)
        if runs and key in scanned:
            continue  # the same content, already scanned (a first page is scanned whole for every role)
        scanned.setdefault(key, f"{user} {url}")
        runs += 1
        response = page.goto(f"{base_url}{url}")
        assert response is not None and response.status < 500, url
        bad = run_axe(page, axe)
        if bad:
            found[url] = found.get(url, []) + bad
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"axe-{user}-{url.strip('/').replace('/', '_')}.png"))
    page.close()
    print(f"axe: {user}: {len(urls)} pages, {runs} scanned ({len(urls) - runs} already scanned for a role)")
    assert found == {}, found


def test_keyboard_reaches_main_content_first(browser, base_url: str) -> None:
    """The first Tab stop is the "skip to content" link, and it moves focus into <main>."""
    page, _ = sign_in(browser, base_url, "analyst")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()
