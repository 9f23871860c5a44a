"""The threat models' norms are written down once (contract/norms.py): every module that checks
or names a norm reads that table, so a new norm is added in one place."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from robustbench_gan.contract.norms import DOMAIN_NORM, NORMS, Norm

PACKAGE = Path(__file__).resolve().parents[1] / "robustbench_gan"


@pytest.mark.parametrize(
    "text, norm", [("Linf", Norm.LINF), ("linf", Norm.LINF), ("L2", Norm.L2), ("l2", Norm.L2)]
)
def test_a_norm_is_read_in_any_case(text, norm):
    assert Norm.parse(text) is norm


@pytest.mark.parametrize("text", ["l1", "", "inf", None, 2, DOMAIN_NORM])
def test_anything_else_is_no_norm(text):
    assert Norm.parse(text) is None


def test_values_are_what_suites_and_csvs_write():
    assert NORMS == ("linf", "l2") and [n.display for n in Norm] == ["Linf", "L2"]
    assert json.dumps(Norm.LINF) == '"linf"' and Norm.L2 == "l2"  # cell ids stay put


def test_no_module_keeps_a_norm_table_of_its_own():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if "NORMS" in names:
                    assert path.name == "norms.py", f"{path.relative_to(PACKAGE)} defines NORMS"
