#!/usr/bin/env python3
"""Reference chat-template renderer: Python jinja2 configured as Hugging Face transformers does.

Protocol: each stdin line is {"template_path": PATH, "context": {...}} (or "template": SOURCE
instead of a path); each stdout line is {"ok": true, "text": ...} or {"ok": false, "error": ...}.

The environment mirrors transformers' chat_template_utils._compile_jinja_template:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
(transformers also adds its AssistantTracker extension, which only adds the {% generation %} tag;
a no-op extension with that tag is registered here), a json.dumps-based tojson filter (no HTML
escaping), and the raise_exception / strftime_now globals. The context is passed to render() as
keyword arguments, exactly like apply_chat_template passes messages, tools, add_generation_prompt,
special tokens and extra template kwargs.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(Extension):
    """Parses {% generation %}...{% endgeneration %} and renders the body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    env = make_env()
    cache = {}      # path -> source
    compiled = {}   # source -> Template
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            if "template" in req:
                source = req["template"]
            else:
                path = req["template_path"]
                if path not in cache:
                    with open(path, encoding="utf-8") as f:
                        cache[path] = f.read()
                source = cache[path]
            if source not in compiled:
                compiled[source] = env.from_string(source)
            text = compiled[source].render(**req.get("context", {}))
            out = {"ok": True, "text": text}
        except Exception as e:  # every failure is an answer, never a crash of the harness
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
