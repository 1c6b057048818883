"""Read the Terraform stack with python-hcl2 into plain Python values.

python-hcl2 keeps HCL's quotes (``"\\"gp3\\""``) and adds bookkeeping keys (``__is_block__``,
``__comments__``); :func:`clean` strips both, so a literal reads as ``"gp3"`` and an expression
as ``"${var.name}"``. Comments are kept apart: the checkov skips live there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2] / "infra" / "terraform"
MODULES = ("network", "source_database", "warehouse", "integration", "app", "kms")


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {unquote(k): clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str):
        return unquote(value)
    return value


@dataclass
class Stack:
    """One Terraform directory (the root or a module): its blocks by kind and name."""

    path: Path
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def resource(self, rtype: str, name: str = "this") -> dict[str, Any]:
        return self.resources[rtype][name]

    def all_resources(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(t, n, body) for t, named in self.resources.items() for n, body in named.items()]


def _add_typed(target: dict[str, dict[str, dict[str, Any]]], blocks: list[dict[str, Any]]) -> None:
    for block in clean(blocks):
        for rtype, named in block.items():
            target.setdefault(rtype, {}).update(named)


@cache
def load(relative: str = ".") -> Stack:
    path = (ROOT / relative).resolve()
    stack = Stack(path=path)
    for tf in sorted(path.glob("*.tf")):
        text = tf.read_text(encoding="utf-8")
        stack.text += text
        doc = hcl2.loads(text)
        _add_typed(stack.resources, doc.get("resource", []))
        _add_typed(stack.data, doc.get("data", []))
        for block in clean(doc.get("variable", [])):
            stack.variables.update(block)
        for block in clean(doc.get("output", [])):
            stack.outputs.update(block)
        for block in clean(doc.get("module", [])):
            stack.modules.update(block)
        for block in clean(doc.get("locals", [])):
            stack.locals.update(block)
    return stack


def module(name: str) -> Stack:
    return load(f"modules/{name}")


def statements(policy_document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The statements of an aws_iam_policy_document data block, by sid."""
    return {s["sid"]: s for s in policy_document.get("statement", [])}


def references(expression: str) -> set[str]:
    """The var./local./module./resource names an expression mentions."""
    return set(re.findall(r"\b(?:var|local|module|data)\.[A-Za-z0-9_.]+", expression))
