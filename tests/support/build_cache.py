"""URL builders and Jinja templates compiled once per test process, not once per test's app.

Every test builds its own app (`create_app`), and ~95% of that time was Werkzeug compiling the URL
builders of the app's ~116 rules: for each rule and each build mode it writes a Python AST, walks it and
`compile()`s it, ~4 ms a rule, so every app paid it again for the same rules (~0.1-0.3 s a test, most of the
suite's setup). The builder Werkzeug generates is a pure function of the rule's parsed parts, its defaults and
the build mode (it takes the Rule as its first argument and reads nothing else), so a builder compiled once is
reused by every later Rule with the same key. Test-only: production builds one app per process.

If Werkzeug changes the private method this wraps, nothing is patched and the tests only run slower.

Parsing the rules likewise (`Rule.compile`, ~60% of what remained of `create_app`): the regex parts, the trace and
which converter each variable uses are a pure function of the rule string, the domain part, merge_slashes and the
map's converter classes, so they are parsed once. Each app's rule still gets converter objects of its own, made
by its own map (`get_converter`), in the same order, and the rule's arguments.

Templates likewise: each app has its own Jinja environment, so every test parsed and compiled again each
template it rendered (~35% of a page-rendering test's CPU). A shared in-memory bytecode cache (Jinja's own
mechanism, keyed by template name and file, checked against a checksum of the source, so an edited template is
compiled again) hands every later app the compiled code; the app still builds its own Template objects with
its own globals and filters.
"""

from __future__ import annotations

from flask import Flask
from jinja2 import BytecodeCache
from werkzeug.routing.rules import Rule

_BUILDERS: dict = {}


class SharedBytecodeCache(BytecodeCache):
    """Compiled template code objects kept in memory for the test process (code objects are immutable)."""

    def __init__(self) -> None:
        self._code: dict = {}

    @staticmethod
    def _options(environment) -> tuple:
        # What the compiler reads from the environment: apps built with other syntax options get their own code.
        return (environment.block_start_string, environment.block_end_string,
                environment.variable_start_string, environment.variable_end_string,
                environment.comment_start_string, environment.comment_end_string,
                environment.line_statement_prefix, environment.line_comment_prefix,
                environment.trim_blocks, environment.lstrip_blocks, environment.newline_sequence,
                environment.keep_trailing_newline, environment.optimized, environment.is_async,
                tuple(sorted(environment.extensions)), type(environment).__qualname__)

    def load_bytecode(self, bucket) -> None:
        stored = self._code.get((self._options(bucket.environment), bucket.key))
        if stored is not None and stored[0] == bucket.checksum:
            bucket.code = stored[1]

    def dump_bytecode(self, bucket) -> None:
        self._code[(self._options(bucket.environment), bucket.key)] = (bucket.checksum, bucket.code)


TEMPLATES = SharedBytecodeCache()


def _key(rule: Rule, append_unknown: bool):
    defaults = rule.defaults or {}
    # A default for a value in the rule is folded into the builder through its converter (a to_url call):
    # the converter's class is part of the key, its arguments are part of the rule string.
    folded = tuple(sorted((str(k), repr(v), type(rule._converters.get(k)).__qualname__)
                          for k, v in defaults.items()))
    return (append_unknown, rule.rule, rule.host, rule.subdomain, tuple(rule._trace), folded)


def install() -> None:
    _install_url_builders()
    _install_rule_parsing()
    if "bytecode_cache" not in Flask.jinja_options:
        Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": TEMPLATES}


def _install_url_builders() -> None:
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


_PARSED: dict = {}


def _parse_key(rule: Rule):
    domain_rule = (rule.host or "") if rule.map.host_matching else (rule.subdomain or "")
    converters = tuple(sorted((name, cls.__module__, cls.__qualname__, id(cls))
                              for name, cls in rule.map.converters.items()))
    return (rule.rule, domain_rule, rule.map.host_matching, bool(rule.merge_slashes), converters)


def _install_rule_parsing() -> None:
    original = getattr(Rule, "compile", None)
    if original is None or getattr(original, "kassa_cached", False) or not hasattr(Rule, "_parse_rule"):
        return

    def compile(self) -> None:
        key = _parse_key(self)
        parsed = _PARSED.get(key)
        if parsed is None:
            made: list = []
            get_converter = self.get_converter

            def recording(variable_name, converter_name, args, kwargs):
                made.append((variable_name, converter_name, args, dict(kwargs)))
                return get_converter(variable_name, converter_name, args, kwargs)

            self.get_converter = recording
            try:
                original(self)
            finally:
                del self.get_converter
            _PARSED[key] = (list(self._parts), list(self._trace), made, set(self.arguments) & {m[0] for m in made})
            return
        parts, trace, made, arguments = parsed
        self._parts = list(parts)
        self._trace = list(trace)
        self._converters = {}
        for variable_name, converter_name, args, kwargs in made:
            self._converters[variable_name] = self.get_converter(variable_name, converter_name, args, kwargs)
        self.arguments.update(arguments)
        self._build = self._compile_builder(False).__get__(self, None)
        self._build_unknown = self._compile_builder(True).__get__(self, None)

    compile.kassa_cached = True  # type: ignore[attr-defined]
    Rule.compile = compile  # type: ignore[method-assign]
