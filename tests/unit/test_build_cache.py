"""The test-only build cache (tests/support/build_cache.py) must not change what the apps build: URLs from a
reused builder equal a freshly compiled one's, and a template edited on disk is compiled again."""

from __future__ import annotations

from jinja2 import Environment, FileSystemLoader
from werkzeug.routing import Map, Rule

from tests.support import build_cache


def _urls(map_: Map) -> list[str]:
    adapter = map_.bind("kassa.test")
    return [
        adapter.build("plain"),
        adapter.build("plain", {"q": "a b", "page": 2}),
        adapter.build("item", {"item_id": 7}),
        adapter.build("item", {"item_id": 7, "tab": "x"}),
        adapter.build("fixed", {"n": 5}),
        adapter.build("defaulted"),
        adapter.build("defaulted", {"page": 3}),
        adapter.build("path", {"rest": "a/b c"}),
    ]


def _map() -> Map:
    return Map([
        Rule("/plain", endpoint="plain"),
        Rule("/items/<int:item_id>", endpoint="item"),
        Rule("/fixed/<int(fixed_digits=4):n>", endpoint="fixed"),
        Rule("/list/", defaults={"page": 1}, endpoint="defaulted"),
        Rule("/list/<int:page>", endpoint="defaulted"),
        Rule("/files/<path:rest>", endpoint="path"),
    ])


def test_a_reused_url_builder_builds_what_a_fresh_one_builds():
    build_cache.install()
    first, second = _urls(_map()), _urls(_map())  # the second map's rules reuse the first one's builders
    assert first == second == [
        "/plain",
        "/plain?q=a+b&page=2",
        "/items/7",
        "/items/7?tab=x",
        "/fixed/0005",
        "/list/",
        "/list/3",
        "/files/a/b%20c",
    ]


def test_an_edited_template_is_compiled_again_not_served_from_the_shared_cache(tmp_path):
    cache = build_cache.SharedBytecodeCache()
    (tmp_path / "page.html").write_text("one {{ x }}", encoding="utf-8")

    def render() -> str:
        env = Environment(loader=FileSystemLoader(tmp_path), bytecode_cache=cache)
        return env.get_template("page.html").render(x=1)

    assert render() == "one 1"
    assert render() == "one 1"  # a new environment, from the cache
    (tmp_path / "page.html").write_text("two {{ x }}", encoding="utf-8")
    assert render() == "two 1"
