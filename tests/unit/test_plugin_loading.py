"""Plugin discovery with fake installed distributions (issue 2, "Plugins").

Every test builds real ``*.dist-info`` folders with an ``entry_points.txt`` in a
temporary folder on ``sys.path``, so ``importlib.metadata`` finds them exactly
as it finds a pip-installed plugin.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyglm
import numpy as np
import pytest
from anyglm.errors import BackendUnavailableError, PluginLoadError, UnknownNameError

# A model plugin module; ``{name}`` is the model name it registers.
MODEL_PLUGIN = '''
from typing import Any

import anyglm


class HalfSquare(anyglm.Model):
    """Least squares, as a third-party plugin would write it."""

    name = "{name}"
    task = "regression"
    description = "third-party least squares"

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        return Z

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        R = Z - Y
        return 0.5 * xp.sum(R * R, axis=-1)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return Z - Y


@anyglm.hookimpl
def anyglm_register_models(register):
    register(HalfSquare())
'''


class FakeSite:
    """Writes importable modules and dist-info folders under a folder on ``sys.path``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []
        self.paths: list[str] = []
        self.add_path(root)

    def add_path(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(folder))
        self.paths.append(str(folder))
        importlib.invalidate_caches()
        return folder

    def install(
        self,
        dist: str,
        plugins: dict[str, tuple[str, str]],
        *,
        version: str = "1.0",
        folder: Path | None = None,
    ) -> None:
        """Install distribution ``dist``: entry point name -> (module name, module source)."""
        where = self.root if folder is None else folder
        info = where / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = ["[anyglm.plugins]"]
        for ep_name, (module, source) in plugins.items():
            (where / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            self.modules.append(module)
            lines.append(f"{ep_name} = {module}")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        importlib.invalidate_caches()

    def cleanup(self) -> None:
        for path in self.paths:
            while path in sys.path:
                sys.path.remove(path)
        for module in self.modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.delenv("ANYGLM_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("ANYGLM_DISABLE_PLUGINS", raising=False)
    fake = FakeSite(tmp_path / "site")
    anyglm.reload_plugins()
    try:
        yield fake
    finally:
        fake.cleanup()
        anyglm.reload_plugins()  # later lookups rediscover the normal plugins


def load_quietly() -> list[warnings.WarningMessage]:
    """Trigger plugin loading; return the warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        anyglm.list_models()
    return list(caught)


def plugin_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, anyglm.PluginWarning)]


def models() -> dict[str, dict]:
    return {m["name"]: m for m in anyglm.list_models()}


def backends() -> dict[str, dict]:
    return {b["name"]: b for b in anyglm.list_backends()}


# -- a working plugin ------------------------------------------------------------------------------


def test_third_party_model_is_listed_and_trains(site: FakeSite) -> None:
    site.install("fake-good", {"good": ("fakeglm_good", MODEL_PLUGIN.format(name="halfsquare"))})
    caught = load_quietly()
    assert plugin_warnings(caught) == []
    info = models()
    assert info["halfsquare"]["origin"] == "fake-good 1.0"
    assert info["halfsquare"]["task"] == "regression"
    assert info["softmax"]["origin"] == "anyglm (built-in)"
    assert type(anyglm.get_model("halfsquare")).__module__ == "fakeglm_good"
    assert anyglm.plugin_failures() == []

    X = np.linspace(-1.0, 1.0, 16).reshape(-1, 1)
    y = 3.0 * X[:, 0] - 1.0
    est = anyglm.Estimator(
        model="halfsquare",
        batch_size=16,
        learning_rate=0.5,
        epochs=400,
        alpha=0.0,
        random_state=0,
        average=False,  # plain gradient descent, for exactly 400 epochs
        n_iter_no_change=None,
    ).fit(X, y)
    assert est.score(X, y) > 0.999
    np.testing.assert_allclose(float(est.coef_[0]), 3.0, atol=1e-3)
    np.testing.assert_allclose(float(est.intercept_), -1.0, atol=1e-3)


def test_third_party_backend_is_listed_with_its_origin(site: FakeSite) -> None:
    source = """
    import anyglm
    from anyglm.backends.numpy import NumpyBackend


    class Shadow(NumpyBackend):
        name = "shadow_numpy"
        modules = ()


    @anyglm.hookimpl
    def anyglm_register_backends(register):
        register(Shadow())
    """
    site.install("fake-backend", {"shadow": ("fakeglm_backend", source)}, version="2.3")
    assert plugin_warnings(load_quietly()) == []
    row = backends()["shadow_numpy"]
    assert row["origin"] == "fake-backend 2.3"
    assert row["available"] is True
    assert row["dtypes"] == ["float32", "float64"]
    assert anyglm.get_backend("shadow_numpy").name == "shadow_numpy"


# -- broken plugins --------------------------------------------------------------------------------


def test_plugin_that_fails_to_import_is_skipped_with_its_cause(site: FakeSite) -> None:
    site.install("fake-good", {"good": ("fakeglm_good2", MODEL_PLUGIN.format(name="halfsquare"))})
    site.install(
        "fake-broken",
        {"brokenmodel": ("fakeglm_broken", "raise RuntimeError('boom from fakeglm_broken')\n")},
    )
    with pytest.warns(anyglm.PluginWarning) as record:
        names = [m["name"] for m in anyglm.list_models()]
    messages = [str(w.message) for w in record]
    assert any(
        "brokenmodel" in m and "fake-broken 1.0" in m and "boom from fakeglm_broken" in m
        for m in messages
    ), messages
    # the others keep working
    assert {"linear", "logistic", "softmax", "halfsquare"} <= set(names)
    assert anyglm.get_model("softmax").name == "softmax"

    failures = anyglm.plugin_failures()
    assert [(f.name, f.origin) for f in failures] == [("brokenmodel", "fake-broken 1.0")]
    original = failures[0].error
    assert isinstance(original, RuntimeError)
    assert str(original) == "boom from fakeglm_broken"

    with pytest.raises(PluginLoadError, match="brokenmodel") as excinfo:
        anyglm.get_model("brokenmodel")
    assert excinfo.value.__cause__ is original
    assert "fake-broken 1.0" in str(excinfo.value)


def test_plugin_with_a_missing_dependency(site: FakeSite) -> None:
    site.install(
        "fake-needs-dep",
        {"needsdep": ("fakeglm_needsdep", "import anyglm_fake_dependency_not_installed\n")},
    )
    caught = load_quietly()
    assert any("needsdep" in m and "fake-needs-dep" in m for m in plugin_warnings(caught))
    with pytest.raises(PluginLoadError) as excinfo:
        anyglm.get_backend("needsdep")
    assert isinstance(excinfo.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize(
    "signature",
    ["register, extra", "reg"],
    ids=["extra-arg", "wrong-arg-name"],
)
def test_hook_with_a_wrong_signature_is_skipped(site: FakeSite, signature: str) -> None:
    source = MODEL_PLUGIN.format(name="badsig").replace(
        "def anyglm_register_models(register):\n    register(HalfSquare())",
        f"def anyglm_register_models({signature}):\n    pass",
    )
    assert f"anyglm_register_models({signature})" in source
    site.install("fake-badsig", {"badsig": ("fakeglm_badsig", source)})
    caught = load_quietly()
    messages = plugin_warnings(caught)
    assert any("badsig" in m and "fake-badsig 1.0" in m for m in messages), messages
    assert "badsig" not in models()
    assert [f.name for f in anyglm.plugin_failures()] == ["badsig"]
    with pytest.raises(PluginLoadError):
        anyglm.get_model("badsig")


@pytest.mark.parametrize("marked", [True, False], ids=["with-hookimpl", "without-hookimpl"])
def test_misspelled_hook_name_is_reported(site: FakeSite, marked: bool) -> None:
    marker = "@anyglm.hookimpl\n" if marked else ""
    source = MODEL_PLUGIN.format(name="typo_ok") + (
        f"\n\n{marker}def anyglm_register_modles(register):\n    pass\n"
    )
    site.install("fake-typo", {"typo": ("fakeglm_typo", source)})
    messages = plugin_warnings(load_quietly())
    assert any(
        "typo" in m and "fake-typo 1.0" in m and "anyglm_register_modles" in m for m in messages
    ), messages
    # the whole plugin is skipped, including its correctly spelled hook
    assert "typo_ok" not in models()
    failure = anyglm.plugin_failures()[0]
    assert failure.name == "typo"
    assert "anyglm_register_models" in str(failure.error)  # the suggestion


def test_plugin_raising_in_its_hook_loses_its_partial_registrations(site: FakeSite) -> None:
    source = (
        MODEL_PLUGIN.format(name="partial_model").replace(
            "    register(HalfSquare())", "    register(HalfSquare())\n    raise KeyError('late')"
        )
        + """

from anyglm.backends.numpy import NumpyBackend


class PartialBackend(NumpyBackend):
    name = "partial_backend"
    modules = ()


@anyglm.hookimpl
def anyglm_register_backends(register):
    register(PartialBackend())
"""
    )
    assert "raise KeyError('late')" in source
    site.install("fake-partial", {"partial": ("fakeglm_partial", source)})
    messages = plugin_warnings(load_quietly())
    assert any("partial" in m and "fake-partial 1.0" in m for m in messages), messages
    assert "partial_model" not in models()
    assert "partial_backend" not in backends()
    failure = anyglm.plugin_failures()[0]
    assert isinstance(failure.error, KeyError)
    with pytest.raises(UnknownNameError):
        anyglm.get_model("partial_model")


def test_registering_a_non_model_is_a_failure(site: FakeSite) -> None:
    source = """
    import anyglm


    @anyglm.hookimpl
    def anyglm_register_models(register):
        register("softmax")
    """
    site.install("fake-notamodel", {"notamodel": ("fakeglm_notamodel", source)})
    messages = plugin_warnings(load_quietly())
    assert any("notamodel" in m and "anyglm.Model" in m for m in messages), messages
    assert isinstance(anyglm.plugin_failures()[0].error, TypeError)


# -- exceptions that are not Exceptions ----------------------------------------------------------


class PluginQuit(BaseException):
    """A BaseException of a plugin's own, neither Exception nor one of Python's."""


BASE_EXCEPTIONS = {
    "SystemExit": ("raise SystemExit(3)\n", SystemExit, "SystemExit: 3"),
    "SystemExit-message": (
        "import sys\nsys.exit('plugin gave up')\n",
        SystemExit,
        "SystemExit: plugin gave up",
    ),
    "GeneratorExit": ("raise GeneratorExit('closed')\n", GeneratorExit, "GeneratorExit: closed"),
    "own-BaseException": (
        "class PluginQuit(BaseException):\n    pass\n\nraise PluginQuit('quit')\n",
        BaseException,
        "PluginQuit: quit",
    ),
}


@pytest.mark.parametrize("kind", list(BASE_EXCEPTIONS))
def test_base_exception_at_import_skips_the_plugin_not_the_process(
    site: FakeSite, kind: str
) -> None:
    source, error_type, described = BASE_EXCEPTIONS[kind]
    site.install("fake-exits", {"exits": ("fakeglm_exits", source)})
    caught = load_quietly()  # would end pytest here if SystemExit escaped
    messages = plugin_warnings(caught)
    assert any("exits" in m and "fake-exits 1.0" in m and described in m for m in messages), (
        messages
    )
    (failure,) = anyglm.plugin_failures()
    assert failure.name == "exits" and isinstance(failure.error, error_type)
    assert failure.describe() == f"exits (fake-exits 1.0): {described}"
    with pytest.raises(PluginLoadError, match="exits") as excinfo:
        anyglm.get_model("exits")
    assert excinfo.value.__cause__ is failure.error
    report = anyglm.doctor()
    assert report["failed_plugins"] == [
        {"name": "exits", "origin": "fake-exits 1.0", "error": described}
    ]
    assert backends()["numpy"]["available"] is True
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    est = anyglm.LogisticRegression(epochs=50, learning_rate=0.5, random_state=0).fit(
        X, [0, 0, 1, 1]
    )
    assert est.predict(X).tolist() == [0, 0, 1, 1]


def test_system_exit_in_a_registration_hook_drops_what_it_registered(site: FakeSite) -> None:
    source = MODEL_PLUGIN.format(name="quitter").replace(
        "    register(HalfSquare())", "    register(HalfSquare())\n    raise SystemExit(4)"
    )
    assert "raise SystemExit(4)" in source
    site.install("fake-quitter", {"quitter": ("fakeglm_quitter", source)})
    messages = plugin_warnings(load_quietly())
    assert any("quitter" in m and "SystemExit: 4" in m for m in messages), messages
    assert "quitter" not in models()
    assert isinstance(anyglm.plugin_failures()[0].error, SystemExit)


def test_keyboard_interrupt_while_loading_a_plugin_is_not_swallowed(site: FakeSite) -> None:
    site.install("fake-ctrlc", {"ctrlc": ("fakeglm_ctrlc", "raise KeyboardInterrupt\n")})
    with pytest.raises(KeyboardInterrupt):
        anyglm.list_models()


def test_strict_mode_raises_plugin_load_error_for_system_exit(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install("fake-exits", {"exits": ("fakeglm_exits_strict", "raise SystemExit(3)\n")})
    monkeypatch.setenv("ANYGLM_STRICT_PLUGINS", "1")
    anyglm.reload_plugins()
    with pytest.raises(PluginLoadError, match=r"exits \(fake-exits 1\.0\): SystemExit: 3") as info:
        anyglm.list_backends()
    assert isinstance(info.value.__cause__, SystemExit) and info.value.__cause__.code == 3


# -- availability probes that hang ---------------------------------------------------------------

# Backends whose availability probe blocks on an Event nobody sets (until the test
# ends). ``CALLS`` counts how often each probe ran.
HUNG_BACKENDS = """
import threading

import anyglm
from anyglm.backends.numpy import NumpyBackend

RELEASE = threading.Event()
CALLS = []


class Hung(NumpyBackend):
    name = "{name}"
    modules = ()

    def _probe(self):
        CALLS.append(self.name)
        RELEASE.wait()
        return None


@anyglm.hookimpl
def anyglm_register_backends(register):
    for name in "{name}".split(","):
        backend = Hung()
        backend.name = name
        register(backend)
"""


@pytest.fixture
def hung(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """The site, with a fast probe timeout; releases the hung probes at the end."""
    monkeypatch.setenv("ANYGLM_PROBE_TIMEOUT", "0.2")
    try:
        yield site
    finally:
        for module in site.modules:
            release = getattr(sys.modules.get(module), "RELEASE", None)
            if release is not None:
                release.set()


def test_a_hung_probe_lists_the_backend_as_unavailable(hung: FakeSite) -> None:
    hung.install("fake-hung", {"hung": ("fakeglm_hung", HUNG_BACKENDS.format(name="hung"))})
    assert plugin_warnings(load_quietly()) == []
    rows = backends()
    assert rows["hung"]["available"] is False
    assert rows["hung"]["reason"] == "probe timed out after 0.2 s"
    assert rows["hung"]["devices"] == [] and rows["hung"]["dtypes"] == []
    assert rows["numpy"]["available"] is True  # the default probe: nothing to wait for
    assert anyglm.doctor()["backends"] == anyglm.list_backends()
    with pytest.raises(BackendUnavailableError, match=r"'hung' .*probe timed out after 0\.2 s"):
        anyglm.Estimator("linear", backend="hung").fit([[0.0], [1.0]], [0.0, 1.0])
    est = anyglm.LinearRegression(epochs=5, random_state=0).fit([[0.0], [1.0]], [0.0, 1.0])
    assert est.backend_ == "numpy"


def test_a_hung_probe_is_waited_for_once_per_process(hung: FakeSite) -> None:
    hung.install("fake-hung", {"hung": ("fakeglm_hung_once", HUNG_BACKENDS.format(name="hung"))})
    load_quietly()
    calls = sys.modules["fakeglm_hung_once"].CALLS
    first = anyglm.get_backend("hung")
    assert not first.is_available()
    assert not first.is_available()
    anyglm.list_backends()
    anyglm.reload_plugins()  # a new backend object joins the probe still running
    second = anyglm.get_backend("hung")
    assert second is not first
    assert second.unavailable_reason == "probe timed out after 0.2 s"
    assert calls == ["hung"]
    threads = [t for t in threading.enumerate() if t.name == "anyglm-probe-hung"]
    assert len(threads) == 1 and threads[0].daemon


def test_probes_run_at_once(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each probe answers only once the other one has started: listed one after the
    # other, the first would time out; probed at once, both answer at once. The
    # long timeout is only a guard: a correct loader never waits for it.
    source = """
    import threading

    import anyglm
    from anyglm.backends.numpy import NumpyBackend

    STARTED = {"left": threading.Event(), "right": threading.Event()}
    OTHER = {"left": "right", "right": "left"}


    class Pair(NumpyBackend):
        modules = ()

        def __init__(self, name):
            self.name = name

        def _probe(self):
            STARTED[self.name].set()
            if not STARTED[OTHER[self.name]].wait(60):
                return "the other probe never started"
            return None


    @anyglm.hookimpl
    def anyglm_register_backends(register):
        register(Pair("left"))
        register(Pair("right"))
    """
    monkeypatch.setenv("ANYGLM_PROBE_TIMEOUT", "30")
    site.install("fake-pair", {"pair": ("fakeglm_pair", source)})
    load_quietly()
    rows = backends()
    assert (rows["left"]["available"], rows["right"]["available"]) == (True, True), (
        rows["left"]["reason"],
        rows["right"]["reason"],
    )


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_bad_probe_timeout_is_a_clear_error(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("ANYGLM_PROBE_TIMEOUT", value)
    anyglm.reload_plugins()
    with pytest.raises(ValueError, match=f"ANYGLM_PROBE_TIMEOUT='{value}'.*positive number"):
        anyglm.list_backends()
    from anyglm.cli import main

    assert main(["backends"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("anyglm: error: ANYGLM_PROBE_TIMEOUT=") and err.count("\n") == 1


def test_doctor_returns_despite_system_exit_and_a_hung_probe(tmp_path: Path) -> None:
    # The acceptance check, in fresh processes as a user meets it.
    fake = FakeSite(tmp_path / "site")
    try:
        fake.install("fake-exits", {"exits": ("fakeglm_sub_exits", "raise SystemExit(3)\n")})
        fake.install(
            "fake-hung",
            {"hung": ("fakeglm_sub_hung", HUNG_BACKENDS.format(name="hung,hung_too"))},
        )
    finally:
        fake.cleanup()  # the subprocesses find the site through PYTHONPATH
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYGLM_")}
    env.update(PYTHONPATH=str(fake.root), ANYGLM_PROBE_TIMEOUT="0.5")

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,  # a guard only: the verdict is the output
        )

    doctor = run("-m", "anyglm", "doctor")
    assert doctor.returncode == 0, doctor.stderr
    out = doctor.stdout
    assert "exits (fake-exits 1.0): SystemExit: 3" in out
    hung_rows = [line for line in out.splitlines() if line.startswith("hung")]
    assert len(hung_rows) == 2, out
    assert all("probe timed out after 0.5 s" in line for line in hung_rows), hung_rows
    assert "anyglm skipped plugin exits" in doctor.stderr  # the PluginWarning

    script = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import anyglm\n"
        "rows = {r['name']: r for r in anyglm.list_backends()}\n"
        "print(rows['numpy']['available'], rows['hung']['reason'])\n"
        "print([f.describe() for f in anyglm.plugin_failures()])\n"
        "est = anyglm.SoftmaxRegression(epochs=20, random_state=0)\n"
        "est.fit([[0.0], [1.0], [2.0]], [0, 1, 2])\n"
        "print(est.n_epochs_, anyglm.doctor()['failed_plugins'][0]['error'])\n"
    )
    api = run("-c", script)
    assert api.returncode == 0, api.stderr
    assert api.stdout.splitlines() == [
        "True probe timed out after 0.5 s",
        "['exits (fake-exits 1.0): SystemExit: 3']",
        "20 SystemExit: 3",
    ]

    strict = run("-m", "anyglm", "doctor", ANYGLM_STRICT_PLUGINS="1")
    assert strict.returncode == 2, strict.stderr
    assert strict.stderr.strip().splitlines()[-1] == (
        "anyglm: error: plugin exits (fake-exits 1.0): SystemExit: 3 (ANYGLM_STRICT_PLUGINS is set)"
    )


# -- name conflicts --------------------------------------------------------------------------------


def test_builtin_wins_over_third_party(site: FakeSite) -> None:
    site.install(
        "aaa-shadow", {"shadowsoftmax": ("fakeglm_shadow", MODEL_PLUGIN.format(name="softmax"))}
    )
    with pytest.warns(anyglm.PluginWarning, match="softmax") as record:
        anyglm.list_models()
    text = " ".join(str(w.message) for w in record)
    assert "shadowsoftmax" in text
    assert "aaa-shadow 1.0" in text
    assert "anyglm (built-in)" in text
    assert models()["softmax"]["origin"] == "anyglm (built-in)"
    assert type(anyglm.get_model("softmax")).__module__ == "anyglm.plugins.softmax"
    assert anyglm.plugin_failures() == []  # overridden, not failed


@pytest.mark.parametrize("zzz_first_on_path", [True, False])
def test_between_third_parties_the_first_distribution_name_wins(
    site: FakeSite, zzz_first_on_path: bool
) -> None:
    first = site.add_path(site.root.parent / "first")
    second = site.add_path(site.root.parent / "second")  # now ahead of "first" on sys.path
    zzz_dir, aaa_dir = (second, first) if zzz_first_on_path else (first, second)
    site.install(
        "zzz-dist",
        {"zzzplug": ("fakeglm_zzz", MODEL_PLUGIN.format(name="dup"))},
        folder=zzz_dir,
    )
    site.install(
        "aaa-dist",
        {"aaaplug": ("fakeglm_aaa", MODEL_PLUGIN.format(name="dup"))},
        folder=aaa_dir,
    )
    with pytest.warns(anyglm.PluginWarning, match="dup") as record:
        anyglm.list_models()
    text = " ".join(str(w.message) for w in record)
    assert "zzzplug" in text and "zzz-dist 1.0" in text and "aaa-dist 1.0" in text
    assert models()["dup"]["origin"] == "aaa-dist 1.0"
    assert type(anyglm.get_model("dup")).__module__ == "fakeglm_aaa"


def test_two_distributions_may_use_the_same_entry_point_name(site: FakeSite) -> None:
    # Entry-point names are chosen by each distribution independently; a common
    # name such as "models" must not make one plugin disappear.
    site.install("one-dist", {"models": ("fakeglm_one", MODEL_PLUGIN.format(name="one_model"))})
    site.install("two-dist", {"models": ("fakeglm_two", MODEL_PLUGIN.format(name="two_model"))})
    caught = load_quietly()
    info = models()
    assert info["one_model"]["origin"] == "one-dist 1.0"
    assert info["two_model"]["origin"] == "two-dist 1.0", plugin_warnings(caught)


# -- environment variables -------------------------------------------------------------------------


def test_strict_mode_turns_a_failure_into_an_error(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install(
        "fake-broken", {"brokenstrict": ("fakeglm_strict", "raise OSError('strict boom')\n")}
    )
    monkeypatch.setenv("ANYGLM_STRICT_PLUGINS", "1")
    anyglm.reload_plugins()
    with pytest.raises(PluginLoadError, match="brokenstrict") as excinfo:
        anyglm.list_models()
    assert isinstance(excinfo.value.__cause__, OSError)
    assert str(excinfo.value.__cause__) == "strict boom"
    assert "fake-broken 1.0" in str(excinfo.value)
    # a false value keeps the default (warn and skip)
    monkeypatch.setenv("ANYGLM_STRICT_PLUGINS", "0")
    anyglm.reload_plugins()
    assert any("brokenstrict" in m for m in plugin_warnings(load_quietly()))


def test_disable_skips_an_entry_point(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.install(
        "fake-broken", {"brokendisabled": ("fakeglm_disabled", "raise RuntimeError('x')\n")}
    )
    site.install("fake-good", {"good": ("fakeglm_good3", MODEL_PLUGIN.format(name="halfsquare"))})
    monkeypatch.setenv("ANYGLM_DISABLE_PLUGINS", "brokendisabled, good")
    anyglm.reload_plugins()
    caught = load_quietly()
    assert plugin_warnings(caught) == []
    assert anyglm.plugin_failures() == []
    assert "halfsquare" not in models()
    assert "fakeglm_disabled" not in sys.modules  # never imported
    assert "softmax" in models()


@pytest.mark.parametrize("value", ["cupy", "anyglm.backends.cupy"])
def test_disable_a_builtin(site: FakeSite, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ANYGLM_DISABLE_PLUGINS", value)
    anyglm.reload_plugins()
    names = set(backends())
    assert "cupy" not in names
    assert {"numpy", "array_api_strict"} <= names
    with pytest.raises(UnknownNameError, match="cupy"):
        anyglm.get_backend("cupy")


# -- lookups ---------------------------------------------------------------------------------------


def test_unknown_model_lists_known_names_and_suggests(site: FakeSite) -> None:
    with pytest.raises(UnknownNameError) as excinfo:
        anyglm.get_model("sofmax")
    message = str(excinfo.value)
    known = message.split("known models: ")[1].split(".")[0].split(", ")
    assert known == sorted(known)
    assert {"linear", "logistic", "softmax"} <= set(known)
    assert "Did you mean 'softmax'?" in message
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, KeyError)


def test_unknown_backend_lists_known_names_and_suggests(site: FakeSite) -> None:
    with pytest.raises(UnknownNameError) as excinfo:
        anyglm.get_backend("nunpy")
    message = str(excinfo.value)
    for name in ("array_api_strict", "cupy", "numpy"):
        assert name in message
    assert "Did you mean 'numpy'?" in message
    with pytest.raises(UnknownNameError) as excinfo:
        anyglm.get_backend("tensorflow")
    assert "Did you mean" not in str(excinfo.value)


def test_unknown_name_mentions_failed_plugins(site: FakeSite) -> None:
    site.install("fake-broken", {"brokenhint": ("fakeglm_hint", "raise RuntimeError('hint')\n")})
    load_quietly()
    with pytest.raises(UnknownNameError, match="brokenhint"):
        anyglm.get_model("something_else")


def test_estimator_with_unknown_model() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'logistic'"):
        anyglm.Estimator(model="logistc").fit([[0.0], [1.0]], [0, 1])


# -- the cupy backend without CuPy -----------------------------------------------------------------


def _cupy_installed() -> bool:
    return importlib.util.find_spec("cupy") is not None


@pytest.mark.skipif(_cupy_installed(), reason="checks the listing on a machine without CuPy")
def test_cupy_is_listed_unavailable_with_a_reason() -> None:
    anyglm.reload_plugins()
    row = backends()["cupy"]
    assert row["available"] is False
    assert isinstance(row["reason"], str) and "CuPy" in row["reason"]
    assert row["devices"] == [] and row["dtypes"] == []
    assert row["origin"] == "anyglm (built-in)"
    be = anyglm.get_backend("cupy")
    with pytest.raises(BackendUnavailableError, match="cupy"):
        be.require()
    with pytest.raises(BackendUnavailableError, match="not available"):
        anyglm.Estimator(model="linear", backend="cupy").fit([[0.0], [1.0]], [0.0, 1.0])


def _list_in_subprocess(code: str, pythonpath: Path | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYGLM_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.split()


def test_listing_backends_does_not_import_cupy() -> None:
    code = (
        "import sys, anyglm\n"
        "before = 'cupy' in sys.modules\n"
        "rows = anyglm.list_backends()\n"
        "assert 'cupy' in [r['name'] for r in rows]\n"
        "print(before, 'cupy' in sys.modules)\n"
    )
    assert _list_in_subprocess(code) == ["False", "False"]
    # in this process too, when cupy was not imported already
    if "cupy" not in sys.modules:
        anyglm.reload_plugins()
        anyglm.list_backends()
        assert "cupy" not in sys.modules


def test_listing_an_available_cupy_does_not_import_it(tmp_path: Path) -> None:
    # Simulate a machine with CuPy installed and a GPU: a stand-in "cupy" package is
    # findable and the driver probe reports a GPU. Listing must still not import CuPy.
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("IMPORTED = True\n", encoding="utf-8")
    code = (
        "import sys, anyglm\n"
        "import anyglm.backends.cupy as cb\n"
        "cb._cuda_driver = lambda: (1, None)\n"
        "rows = {r['name']: r for r in anyglm.list_backends()}\n"
        "print(rows['cupy']['available'], 'cupy' in sys.modules)\n"
    )
    assert _list_in_subprocess(code, tmp_path) == ["True", "False"]


# -- doctor ------------------------------------------------------------------------------------


def test_doctor_lists_every_plugin_and_each_broken_one_with_its_error(
    site: FakeSite, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install(
        "fake-good", {"goodglm": ("fakeglm_doc_good", MODEL_PLUGIN.format(name="goodglm"))}
    )
    site.install("fake-broken", {"brokenglm": ("fakeglm_doc_bad", "import no_such_module_xyz\n")})
    load_quietly()
    report = anyglm.doctor()
    models_by_name = {m["name"]: m for m in report["models"]}
    assert models_by_name["goodglm"]["origin"] == "fake-good 1.0"
    assert models_by_name["softmax"]["origin"] == "anyglm (built-in)"
    backends_by_name = {b["name"]: b for b in report["backends"]}
    assert backends_by_name["numpy"]["available"] is True
    assert backends_by_name["cupy"]["available"] in (True, False)
    if not backends_by_name["cupy"]["available"]:
        assert backends_by_name["cupy"]["reason"]
    (failure,) = report["failed_plugins"]
    assert failure["name"] == "brokenglm" and failure["origin"] == "fake-broken 1.0"
    assert "ModuleNotFoundError" in failure["error"] and "no_such_module_xyz" in failure["error"]
    assert report["libraries"]["numpy"] == np.__version__

    from anyglm.cli import main

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "plugins that failed to load:" in out
    assert "brokenglm (fake-broken 1.0): ModuleNotFoundError" in out
    assert "goodglm" in out


def test_compare_backends_reports_agreement_and_unavailable_backends() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    out = anyglm.compare_backends(
        "logistic", X, y, ["numpy", "array_api_strict", "cupy"], epochs=5, batch_size=8
    )
    assert out["numpy"]["max_param_diff"] == 0.0
    assert out["array_api_strict"]["available"] is True
    assert out["array_api_strict"]["max_param_diff"] <= 1e-12
    assert out["array_api_strict"]["max_prediction_diff"] <= 1e-12
    if not anyglm.get_backend("cupy").is_available():
        assert out["cupy"] == {
            "available": False,
            "reason": anyglm.get_backend("cupy").unavailable_reason,
        }
    f32 = anyglm.compare_backends(
        "softmax", X, y % 2, ["array_api_strict"], dtype="float32", epochs=3
    )
    assert 0.0 <= f32["array_api_strict"]["max_param_diff"] <= 1e-5
