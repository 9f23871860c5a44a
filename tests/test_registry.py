"""The registry: decorator registration, wildcard listing, errors, plugins by name."""

from __future__ import annotations

import importlib
import sys
import textwrap
from importlib import metadata

import pytest

from robustbench_gan.checkpoint import sha256_file
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


def test_a_retired_name_is_unknown_with_the_plugins_one_line(registry):
    """A plugin's old name (``retired``) is no alias: asking for it says what the plugin says
    in one line (no close matches), and it stays taken for other plugins."""
    registry.add("cascade", lambda: 1, retired={"old_name": "now called 'cascade'"})
    assert "old_name" not in registry and registry.list(aliases=True) == ["cascade"]
    for ask in (registry.get, registry.origin):
        with pytest.raises(UserError) as err:
            ask("old_name")
        assert str(err.value) == "unknown widget 'old_name': now called 'cascade'"
    with pytest.raises(ValueError, match="already registered"):
        registry.add("old_name", lambda: 2)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("other", lambda: 2, retired={"cascade": "taken"})


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


# -- module:attr from a folder, and where a plugin's code comes from ---------------------
def write_module(folder, name: str, value: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(f"def make():\n    return {value!r}\n")
    importlib.invalidate_caches()


@pytest.fixture
def forget_modules():
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)


def test_module_attr_resolves_from_a_folder_not_on_sys_path(tmp_path, registry, forget_modules):
    forget_modules.append("rbg_suite_models")
    write_module(tmp_path / "suite", "rbg_suite_models", "from the suite folder")
    path_before = list(sys.path)
    with pytest.raises(UserError, match="cannot import"):
        registry.get("rbg_suite_models:make")
    assert registry.get("rbg_suite_models:make", search=[tmp_path / "suite"])() == (
        "from the suite folder"
    )
    assert sys.path == path_before
    sys.modules.pop("rbg_suite_models")
    with Registry.search_path(tmp_path / "suite"):
        assert registry.create("rbg_suite_models:make") == "from the suite folder"
    assert sys.path == path_before


def test_two_suite_folders_with_modules_of_one_name(tmp_path, registry, forget_modules):
    forget_modules.append("rbg_same_name")
    write_module(tmp_path / "a", "rbg_same_name", "a")
    write_module(tmp_path / "b", "rbg_same_name", "b")
    assert registry.get("rbg_same_name:make", search=[tmp_path / "a"])() == "a"
    assert registry.get("rbg_same_name:make", search=[tmp_path / "b"])() == "b"
    assert sys.modules["rbg_same_name"].__file__ == str(tmp_path / "b" / "rbg_same_name.py")
    write_module(tmp_path / "b", "rbg_same_name", "b, edited")  # the new code runs
    assert registry.get("rbg_same_name:make", search=[tmp_path / "b"])() == "b, edited"


def test_a_suite_module_never_replaces_an_installed_one(tmp_path, registry):
    write_module(tmp_path, "json", "not the json module")
    with pytest.raises(UserError, match="'json' in .* already imported from .*rename it"):
        registry.get("json:make", search=[tmp_path])
    assert registry.get("json:dumps")([1]) == "[1]"


def test_module_attr_falls_back_to_the_working_directory(
    tmp_path, monkeypatch, registry, forget_modules
):
    forget_modules.append("rbg_cwd_models")
    write_module(tmp_path, "rbg_cwd_models", "from the working directory")
    monkeypatch.chdir(tmp_path)
    assert registry.create("rbg_cwd_models:make") == "from the working directory"


def test_origin_hashes_the_module_file(tmp_path, registry, forget_modules):
    forget_modules.append("rbg_origin_models")
    write_module(tmp_path, "rbg_origin_models", "one")
    first = registry.origin("rbg_origin_models:make", search=[tmp_path])
    assert first is not None and first["module"] == "rbg_origin_models"
    assert "rbg_origin_models" not in sys.modules  # found, not imported
    write_module(tmp_path, "rbg_origin_models", "another")
    second = registry.origin("rbg_origin_models:make", search=[tmp_path])
    assert second is not None and second["sha256"] != first["sha256"]
    package = tmp_path / "rbg_origin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("def make():\n    return 1\n")
    origin = registry.origin("rbg_origin_pkg:make", search=[tmp_path])
    assert origin == {"module": "rbg_origin_pkg", "sha256": sha256_file(package / "__init__.py")}
    with pytest.raises(UserError, match="cannot find the module"):
        registry.origin("rbg_no_such_module_xyz:make")


def test_origin_of_builtins_namespaces_and_entry_points(registry):
    registry.add("builtin_widget", lambda: None)
    assert registry.origin("builtin_widget") is None
    assert ATTACKS.origin("pgd") is None and ATTACKS.origin("art:FastGradientMethod") is None
    entry = next(ep for ep in metadata.distribution("pytest").entry_points)
    registry._entry_points = {entry.name: entry}
    assert registry.origin(entry.name) == {
        "distribution": "pytest",
        "version": metadata.version("pytest"),
    }
    with pytest.raises(UserError, match="unknown widget"):
        registry.origin("nothing_like_it")


def test_a_built_in_plugin_with_a_revision_gets_new_cell_ids():
    """A built-in plugin whose results changed (its class's ``revision``) carries it in its
    origin, so its stored cells are computed again; the others carry nothing."""
    from robustbench_gan.registry import ATTACKS

    # Square as AutoAttack runs it (1), FAB within the budget (2)
    assert ATTACKS.origin("autoattack") == {"revision": "3"}
    assert ATTACKS.origin("adaptive") == {"revision": "2"}  # indicators over the budget
    assert ATTACKS.origin("pgd") is None and ATTACKS.origin("square") is None


# -- what the core asks of a plugin it never names -----------------------------------------
def test_a_default_plugin_and_presets_are_registered_with_the_plugin(registry):
    with pytest.raises(UserError, match="no default widget is registered"):
        registry.default()
    registry.add("plain", lambda: None)
    registry.add("main", lambda **k: k, default=True, presets={"quick": {"steps": 1}})
    assert registry.default() == "main"
    assert registry.presets() == ["quick"] and registry.preset("slow") is None
    name, params = registry.preset("quick")
    assert name == "main" and dict(params) == {"steps": 1}
    with pytest.raises(TypeError):
        params["steps"] = 2  # type: ignore[index]  # frozen: one preset for every caller
    with pytest.raises(ValueError, match="already the default"):
        registry.add("other", lambda: None, default=True)
    with pytest.raises(ValueError, match="preset 'quick' is already registered"):
        registry.add("third", lambda: None, presets={"quick": {}})


def test_a_namespace_says_what_it_is_and_how_a_zoo_reads_its_entries(registry):
    def zoo(source, entry, where, folder, dataset):
        return source

    registry.add_namespace("lib", lambda name: name.upper, about="a library's widgets")
    registry.add_namespace("zoo", lambda name: name.upper, target=zoo)
    assert registry.get("lib:abc")() == "ABC"
    assert registry.namespace("lib:abc").about == "a library's widgets"
    assert registry.namespace("zoo").target is zoo and registry.namespace("lib").target is None
    assert registry.namespace("elsewhere:abc") is None and registry.namespace("abc") is None


def test_the_built_in_plugins_register_what_the_core_asks_of_them():
    from robustbench_gan.registry import CLASSIFIERS, DATASETS

    assert DATASETS.default() in DATASETS.list()
    name, params = ATTACKS.preset("standard")
    assert name in ATTACKS.list() and dict(params) == {"version": "standard"}
    zoos = [p for p in CLASSIFIERS.namespaces() if CLASSIFIERS.namespace(p).target]
    assert zoos == ["robustbench"]
    assert all(CLASSIFIERS.namespace(p).about for p in CLASSIFIERS.namespaces())
