"""The registry: decorator registration, wildcard listing, errors, plugins by name."""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata

import pytest

from robustbench_gan.errors import UserError
from robustbench_gan.registry import ATTACKS, REGISTRIES, Registry, list_attacks


@pytest.fixture
def registry() -> Registry:
    reg = Registry(
        "widget", builtins="robustbench_gan.errors", group="robustbench_gan.test_widgets"
    )
    reg._entry_points = {}  # no third-party plugins in this test registry
    return reg


def test_decorator_registers_and_create_passes_kwargs(registry):
    @registry.register("square", aliases=("sq",))
    def square(*, side: int = 1) -> int:
        return side * side

    assert registry.create("square", side=3) == 9
    assert registry.create("sq", side=2) == 4
    assert registry.list() == ["square"]
    assert registry.list(aliases=True) == ["sq", "square"]


def test_registering_a_name_twice_is_an_error(registry):
    registry.add("a", lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", lambda: 2)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("b", lambda: 2, aliases=("a",))


def test_wildcard_listing(registry):
    for name in ("pgd", "pgd_l2", "fgsm", "apgd_ce"):
        registry.add(name, lambda: None)
    assert registry.list("pgd*") == ["pgd", "pgd_l2"]
    assert registry.list("*gd*") == ["apgd_ce", "pgd", "pgd_l2"]
    assert registry.list("?gsm") == ["fgsm"]


def test_unknown_name_lists_close_matches(registry):
    registry.add("small_cnn", lambda: None)
    registry.add("resnet18", lambda: None)
    with pytest.raises(UserError) as err:
        registry.get("smal_cnn")
    assert "unknown widget 'smal_cnn'" in str(err.value)
    assert "'small_cnn'" in str(err.value)
    assert "\n" not in str(err.value)


def test_module_attr_names_an_unpackaged_plugin(tmp_path, monkeypatch, registry):
    (tmp_path / "my_plugins.py").write_text(
        textwrap.dedent(
            """
            def make(*, k=1):
                return ("made", k)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.create("my_plugins:make", k=5) == ("made", 5)
    with pytest.raises(UserError, match="cannot import"):
        registry.get("my_plugins:nothing_here")
    sys.modules.pop("my_plugins", None)


def test_entry_points_are_listed_without_loading_and_a_broken_one_fails_on_use(registry):
    good = metadata.EntryPoint("good", "json:dumps", registry.group)
    broken = metadata.EntryPoint("broken", "no_such_module_xyz:thing", registry.group)
    registry._entry_points = {"good": good, "broken": broken}
    assert registry.list() == ["broken", "good"]  # listing imports nothing
    assert registry.get("good")([1]) == "[1]"
    with pytest.raises(UserError, match="failed to load"):
        registry.get("broken")


def test_five_registries_with_builtins():
    assert set(REGISTRIES) == {"dataset", "classifier", "generator", "attack", "defense"}
    assert {"fgsm", "pgd"} <= set(list_attacks())
    assert list_attacks("pgd*") == [n for n in ATTACKS.list() if n.startswith("pgd")]
    assert {"mlp", "small_cnn", "lenet", "resnet18"} <= set(REGISTRIES["classifier"].list())
    assert {"dcgan", "cdcgan"} <= set(REGISTRIES["generator"].list())
    assert {"fgsm_at", "ensemble", "gan_augment"} <= set(REGISTRIES["defense"].list())
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "svhn"} <= set(
        REGISTRIES["dataset"].list()
    )


def test_every_public_module_of_the_builtins_package_registers(tmp_path, monkeypatch):
    """A module dropped into the builtins package registers with no import in __init__."""
    (tmp_path / "widget_hub.py").write_text(
        textwrap.dedent(
            """
            from robustbench_gan.registry import Registry

            WIDGETS = Registry("widget", builtins="widget_plugins", group="rbg.test_widgets")
            WIDGETS._entry_points = {}
            """
        )
    )
    package = tmp_path / "widget_plugins"
    package.mkdir()
    (package / "__init__.py").write_text('"""Nothing imported here."""\n')
    for name in ("alpha", "beta"):
        (package / f"{name}.py").write_text(
            textwrap.dedent(
                f"""
                from widget_hub import WIDGETS

                @WIDGETS.register("{name}_widget")
                def make():
                    return "{name}"
                """
            )
        )
    (package / "_private.py").write_text("raise RuntimeError('private modules are skipped')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        from widget_hub import WIDGETS

        assert WIDGETS.list() == ["alpha_widget", "beta_widget"]
        assert WIDGETS.create("beta_widget") == "beta"
        assert "widget_plugins._private" not in sys.modules
    finally:
        for module in (
            "widget_hub",
            "widget_plugins",
            "widget_plugins.alpha",
            "widget_plugins.beta",
        ):
            sys.modules.pop(module, None)


def test_the_adapters_namespaces_are_found_by_discovery():
    assert ATTACKS.namespaces() == ["art", "foolbox"]
    assert ATTACKS.get("art:FastGradientMethod").func.__name__ == "ArtAttack"
    assert ATTACKS.get("foolbox:LinfPGD").func.__name__ == "FoolboxAttack"
