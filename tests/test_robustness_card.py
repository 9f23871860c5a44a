"""One model card for three kinds of robustness: model_cards.json carries the corruption and
certified figures with their intervals, `rbg publish` puts the three side by side
(<dataset>-robustness.csv, .md, .html, .png), and `benchmark(..., corruptions=True,
certify={...})` and `rbg eval --corruptions --certify` give them for one model."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from test_certify_kind import BASE

import robustbench_gan
from robustbench_gan.cli import main
from robustbench_gan.errors import UserError
from robustbench_gan.publish.leaderboards import publish
from robustbench_gan.publish.robustness_pages import points
from robustbench_gan.publish.robustness_view import MEASURES, read_view
from robustbench_gan.runner.run import run_suite

SUITE = (
    BASE.replace('name = "smooth"', 'name = "both"').replace("eps = [0]", "eps = [0.1]")
    + "[corruptions]\nseverities = [1, 3]\n"
    + "[certify]\nsigma = 0.25\nn0 = 20\nn = 100\nimages = 20\nbatch = 64\nradii = [0.25, 0.5]\n"
)
MODELS = ["mlp", "mlp+gaussian_augment"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card")
    (folder / "both.toml").write_text(SUITE)
    out = folder / "out"
    run_suite(folder / "both.toml", out=out, cache_dir=folder / "cache", progress=False)
    return out


def cards(out) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((out / "model_cards.json").read_text())}


def test_the_card_holds_the_three_kinds_with_intervals(run):
    found = cards(run)
    summary = pd.read_csv(run / "corruption_summary.csv").set_index("model")
    certified = pd.read_csv(run / "certified.csv")
    for label in MODELS:
        card = found[label]
        low, high = card["robust_acc_ci"]
        assert low <= card["robust_acc"] <= high
        corruptions = card["corruptions"]
        assert corruptions["mean_corruption_acc"] == pytest.approx(
            summary.loc[label, "mean_corruption_acc"]
        )
        assert corruptions["worst_corruption"] == summary.loc[label, "worst_corruption"]
        assert corruptions["severities"] == [1, 3] and corruptions["n_corruptions"] == 15
        for key in ("mean_corruption_acc", "worst_corruption_acc"):
            low, high = corruptions[f"{key}_ci"]
            assert 0 <= low <= corruptions[key] <= high <= 1
        # the worst corruption is no better than the mean
        assert corruptions["worst_corruption_acc"] <= corruptions["mean_corruption_acc"]
        smooth = card["certified"]
        assert (smooth["sigma"], smooth["n"], smooth["n_examples"]) == (0.25, 100, 20)
        rows = certified[certified["model"] == label].set_index("radius")
        by_radius = smooth["certified_acc_by_radius"]
        assert list(by_radius) == ["0.25", "0.5"]
        for radius, at in by_radius.items():
            assert at["certified_acc"] == pytest.approx(rows.loc[float(radius), "certified_acc"])
            assert at["ci"][0] <= at["certified_acc"] <= at["ci"][1]
        # certified accuracy falls with the radius and never passes the smoothed clean one
        accs = [at["certified_acc"] for at in by_radius.values()]
        assert accs == sorted(accs, reverse=True) and accs[0] <= smooth["smoothed_clean_acc"]


def test_a_suite_without_them_has_cards_without_them(tmp_path):
    text = SUITE.split("[corruptions]")[0].replace("[[defenses]]", "[[x]]")
    text = text.replace('name = "gaussian_augment"\nbase = "mlp"\nsigma = 0.25\n', "")
    text = text.replace("[[x]]\n", "")
    (tmp_path / "plain.toml").write_text(text)
    out = tmp_path / "out"
    run_suite(tmp_path / "plain.toml", out=out, cache_dir=tmp_path / "cache", progress=False)
    card = cards(out)["mlp"]
    assert "corruptions" not in card and "certified" not in card
    publish(out, tmp_path / "results")
    assert not list((tmp_path / "results").glob("*-robustness.*"))
    assert "robustness" not in (tmp_path / "results" / "digits-linf.md").read_text()


def test_publish_puts_the_three_side_by_side(run, tmp_path):
    results = tmp_path / "results"
    written = publish(run, results)
    view = results / "digits-robustness.csv"
    assert {
        view,
        view.with_suffix(".md"),
        view.with_suffix(".html"),
        view.with_suffix(".png"),
    } <= set(written)
    frame = read_view(view)
    assert set(frame["measure"]) == set(MEASURES)
    assert (frame["ci_low"] <= frame["value"]).all() and (frame["value"] <= frame["ci_high"]).all()
    found = cards(run)
    mca = frame[(frame["measure"] == "corruption_mean") & (frame["defense"] == "none")]
    assert mca["value"].iloc[0] == pytest.approx(found["mlp"]["corruptions"]["mean_corruption_acc"])
    markdown = view.with_suffix(".md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| model |"))
    for column in ("clean", "robust Linf 0.1", "mCA (15 corruptions, severities 1, 3)",
                   "worst corruption", "certified L2 r=0.25 (sigma 0.25)"):  # fmt: skip
        assert column in header
    assert "data:image/png;base64," in view.with_suffix(".html").read_text()
    # the leaderboard's pages link the view; a run without it links nothing (the test above)
    assert (
        "[digits-robustness.md](digits-robustness.md)" in (results / "digits-linf.md").read_text()
    )
    assert 'href="digits-robustness.html"' in (results / "digits-linf.html").read_text()
    # a second publish of the same run replaces its rows; another seed adds its own
    publish(run, results)
    assert len(read_view(view)) == len(frame)


def test_a_damaged_card_or_view_is_refused_in_one_line(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damaged = json.loads((copy / "model_cards.json").read_text())
    damaged[0]["corruptions"]["mean_corruption_acc_ci"] = [0.9, 0.95]  # not around its value
    (copy / "model_cards.json").write_text(json.dumps(damaged))
    with pytest.raises(UserError, match="mean_corruption_acc_ci.*not an interval") as caught:
        publish(copy, tmp_path / "results")
    assert "model_cards.json" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "results" / "digits-robustness.csv").exists()  # nothing written
    results = tmp_path / "ok"
    publish(run, results)
    view = results / "digits-robustness.csv"
    text = view.read_text()
    view.write_text(text.replace(",corruption_worst,", ",=HYPERLINK(1),", 1))
    with pytest.raises(UserError, match="column measure.*is not one of"):
        publish(run, results)


CERTIFY = {"n0": 10, "n": 100, "images": 10, "radii": [0.25, 0.5]}


def test_benchmark_and_eval_give_the_three_kinds(own_model, capsys):
    folder, model = own_model
    result = robustbench_gan.benchmark(
        model, dataset="digits", eps=0.1, n_examples=30, attacks=["fgsm"],
        corruptions={"severities": [2]}, certify=CERTIFY, out=folder / "api",
        cache_dir=folder / "cache",
    )  # fmt: skip
    assert result.corruptions["severities"] == [2]
    assert list(result.certified["certified_acc_by_radius"]) == ["0.25", "0.5"]
    assert result.model_card["corruptions"] == result.corruptions
    assert (folder / "api" / "corruption.csv").is_file()
    assert (folder / "api" / "certified.csv").is_file()
    plain = robustbench_gan.benchmark(
        model, dataset="digits", eps=0.1, n_examples=30, attacks=["fgsm"],
        cache_dir=folder / "cache",
    )  # fmt: skip
    assert plain.corruptions is None and plain.certified is None
    code = main([
        "eval", "--model", "tinynet:Net", "--weights", "net.pt", "--dataset", "digits",
        "--eps", "0.1", "--n", "30", "--attacks", "fgsm", "--corruptions",
        "--corruption-param", "severities=[2]", "--certify", "--certify-param", "n0=10",
        "--certify-param", "n=100", "--certify-param", "images=10", "--certify-param",
        "radii=[0.25, 0.5]", "--out", "cli", "--cache-dir", "cache", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    said = capsys.readouterr().out
    assert "mean corruption accuracy" in said and "certified accuracy (L2, sigma 0.25)" in said
    card = json.loads((folder / "cli" / "model_card.json").read_text())
    assert card["corruptions"] == result.corruptions  # the same model, images and seed
    assert card["certified"] == result.certified
    # `rbg report` renders the eval folder again from its run.json, the kinds' tables kept
    assert main(["report", "cli"]) == 0
    assert "Certified robustness" in (folder / "cli" / "report.md").read_text()


def test_bad_settings_name_the_option(own_model, capsys):
    code = main([
        "eval", "--model", "tinynet:Net", "--weights", "net.pt", "--dataset", "digits",
        "--eps", "0.1", "--n", "30", "--attacks", "fgsm", "--certify-param", "sigma=-1",
        "--no-progress",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "--certify-param sigma" in err and "\n" == err[-1] and err.count("\n") == 1
    with pytest.raises(UserError, match="corruptions.severities"):
        robustbench_gan.benchmark(
            own_model[1], dataset="digits", eps=0.1, n_examples=30, attacks=["fgsm"],
            corruptions={"severities": [9]},
        )  # fmt: skip
    with pytest.raises(UserError, match="must be True, False or a table"):
        robustbench_gan.benchmark(
            own_model[1], dataset="digits", eps=0.1, n_examples=30, attacks=["fgsm"],
            certify="yes",
        )  # fmt: skip


def test_the_picture_plots_the_first_radius_above_zero():
    """Radius 0 certifies nothing beyond the smoothed prediction: the picture's certified
    panel takes the first radius above it that the most models have."""
    settings = ["L2 r=0 (sigma 0.25)", "L2 r=0.25 (sigma 0.25)", "L2 r=0.5 (sigma 0.25)"]
    frame = pd.DataFrame({
        "suite": "s", "seed": 0, "target": "m", "defense": "none", "measure": "certified_acc",
        "setting": settings, "value": [0.5, 0.4, 0.3], "ci_low": [0.4, 0.3, 0.2],
        "ci_high": [0.6, 0.5, 0.4], "n": 10,
    })  # fmt: skip
    assert points(frame, "certified_acc")[0] == settings[1]
    assert points(frame.iloc[:1], "certified_acc")[0] == settings[0]  # nothing else to plot
