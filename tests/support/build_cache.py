"""URL builders compiled once per test process.

Every test builds its own app (`create_app`), and ~95% of that time was Werkzeug compiling the URL
builders of the app's ~116 rules: for each rule and each build mode it writes a Python AST, walks it and
`compile()`s it, ~4 ms a rule, so every app paid it again for the same rules (~0.1-0.3 s a test, most of the
suite's setup). The builder Werkzeug generates is a pure function of the rule's parsed parts, its defaults and
the build mode (it takes the Rule as its first argument and reads nothing else), so a builder compiled once is
reused by every later Rule with the same key. Test-only: production builds one app per process.

If Werkzeug changes the private method this wraps, nothing is patched and the tests only run slower.
"""

from __future__ import annotations

from werkzeug.routing.rules import Rule

_BUILDERS: dict = {}


def _key(rule: Rule, append_unknown: bool):
    defaults = rule.defaults or {}
    # A default for a value in the rule is folded into the builder through its converter (a to_url call):
    # the converter's class is part of the key, its arguments are part of the rule string.
    folded = tuple(sorted((str(k), repr(v), type(rule._converters.get(k)).__qualname__)
                          for k, v in defaults.items()))
    return (append_unknown, rule.rule, rule.host, rule.subdomain, tuple(rule._trace), folded)


def install() -> None:
    original = getattr(Rule, "_compile_builder", None)
    if original is None or getattr(original, "kassa_cached", False):
        return

    def _compile_builder(self, append_unknown: bool = True):
        key = _key(self, append_unknown)
        builder = _BUILDERS.get(key)
        if builder is None:
            builder = _BUILDERS[key] = original(self, append_unknown)
        return builder

    _compile_builder.kassa_cached = True  # type: ignore[attr-defined]
    Rule._compile_builder = _compile_builder  # type: ignore[method-assign]
