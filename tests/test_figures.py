"""The figures package: registry, output folder, and byte-for-byte reproducible files."""

import hashlib

import matplotlib

matplotlib.use("Agg")

import figures  # noqa: E402
from figures import _common  # noqa: E402


def test_registry_lists_every_figure_module_with_its_spec():
    names = figures.names()
    assert "fig_scatter" in names and all(n.startswith("fig_") for n in names)
    for name in names:
        assert callable(figures.load(name).make)
        assert (_common.SPECS / f"{name}.toml").is_file(), name


def _draw_and_save(out):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 2], label="line")
    ax.legend()
    _common.OUTPUT["figures"] = out
    try:
        return _common.save(fig, "fig_test")
    finally:
        _common.OUTPUT["figures"] = None


def test_saved_png_and_pdf_are_byte_reproducible(tmp_path):
    first = _draw_and_save(tmp_path / "a")
    second = _draw_and_save(tmp_path / "b")
    digest = lambda path: hashlib.sha256(open(path, "rb").read()).hexdigest()  # noqa: E731
    assert [p.rsplit(".", 1)[1] for p in first] == ["png", "pdf"]
    assert [digest(p) for p in first] == [digest(p) for p in second]
    assert b"CreationDate" not in open(first[1], "rb").read()
