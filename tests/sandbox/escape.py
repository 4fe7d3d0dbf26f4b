"""Escaped code: plain Python compiled without RestrictedPython, which reaches ``os`` and
``sys`` the way a script would if it ever got past the compiler and the guards (layers 1 and
2). Only it can show what the later layers hold alone. Imports nothing but the sandbox, so
that a process of its own (confined_run.py) can use it."""

from __future__ import annotations

import hashlib
import textwrap

from sandbox.compiler import SCRIPT_FILENAME, CompiledScript

ESCAPE = """
def _module(name):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["sys"].modules[name]
os = _module("os")
sys = _module("sys")
builtins = _module("builtins")
"""


def escaped(body: str) -> CompiledScript:
    """Plain, unrestricted code: what a script would run had it escaped layers 1 and 2."""
    source = ESCAPE + textwrap.dedent(body)
    code = compile(source, SCRIPT_FILENAME, "exec")
    return CompiledScript(code=code, sha256=hashlib.sha256(source.encode()).hexdigest())
