"""Each command is one call into the API, with the flags it was given, and ``main`` alone turns
the outcome into an exit code (``tulip.cli.main.EXIT_CODES``).

As in DVC's ``tests/unit/command``: the API function is patched with ``autospec`` (so a call
that no longer fits its signature fails here) and the exact call is asserted. The end-to-end
tests that run the real console script stay beside these (``test_cli.py`` and friends).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from auditor.audit import AuditResult
from pipelines.backend import Backend
from pipelines.errors import GateBlocked, TulipError
from pipelines.refs import Ref
from tests.audits import audit as audit_document
from tulip.cli.base import Settings
from tulip.cli.main import EXIT_CODES, exit_code, main


@pytest.fixture
def backend():
    """The store the command opens: a stand-in of the Backend interface."""
    fake = mock.create_autospec(Backend, instance=True)
    with mock.patch.object(Settings, "backend", autospec=True, return_value=fake):
        yield fake


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return done.value.code


def result(verdict: str, findings=()) -> AuditResult:
    doc = audit_document(verdict, findings)
    doc["summary"] = {"images": 3, "classes": {"daisy": 3}}
    return AuditResult(document=doc, findings=[])


MESSAGE = (
    "orchids looks like tulips: " + "rename the folder to tulips if that is what it holds " * 3
)


# -- tulip audit -------------------------------------------------------------------------------


def test_audit_calls_audit_commit_with_the_refs_and_the_policy_file(backend, tmp_path, capsys):
    policy = tmp_path / "policy.toml"
    policy.write_text("[drift]\nenabled = false\n")
    with mock.patch("auditor.audit_commit", autospec=True, return_value=result("pass")) as api:
        code = run(
            "audit",
            "flower_photos@master",
            "--reference",
            "label_reference@v2",
            "--policy",
            str(policy),
            "--architecture",
            "mobilenet_0.25_224",
        )
    assert code == 0
    api.assert_called_once_with(
        backend,
        Ref("flower_photos", "master"),
        reference=Ref("label_reference", "v2"),
        policy=policy,
        architecture="mobilenet_0.25_224",
        progress=mock.ANY,
    )
    assert capsys.readouterr().out.startswith("PASS: flower_photos@c0ffee")


def test_audit_of_a_folder_calls_audit_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    with mock.patch("auditor.audit_folder", autospec=True, return_value=result("warn")) as api:
        assert run("audit", "--dir", str(folder), "--reference", str(tmp_path)) == 0
    api.assert_called_once_with(
        folder, reference=tmp_path, policy=None, architecture=None, progress=mock.ANY
    )


@pytest.mark.parametrize(
    ("verdict", "flags", "code"),
    [("pass", (), 0), ("warn", (), 0), ("fail", (), 3), ("warn", ("--fail-on", "warn"), 3)],
)
def test_the_verdict_decides_the_exit_code(backend, verdict, flags, code):
    with mock.patch("auditor.audit_commit", autospec=True, return_value=result(verdict)):
        assert run("audit", "flower_photos@master", *flags) == code


def test_a_failing_audit_still_exits_3_when_the_reader_closes_the_pipe(backend):
    """`tulip audit ... | head -1` in CI: the verdict, not the pipe, decides the exit code."""
    with (
        mock.patch("auditor.audit_commit", autospec=True, return_value=result("fail")),
        mock.patch("tulip.cli.audit_cmd._print_findings", side_effect=BrokenPipeError),
    ):
        assert run("audit", "flower_photos@master") == 3
    with (
        mock.patch("auditor.audit_commit", autospec=True, return_value=result("pass")),
        mock.patch("tulip.cli.audit_cmd._print_findings", side_effect=BrokenPipeError),
    ):
        assert run("audit", "flower_photos@master") == 0


def test_audit_needs_a_ref_or_a_folder(capsys):
    assert run("audit") == 2
    assert "give one of REPO@REF, --dir PATH or --embeddings FILE" in capsys.readouterr().err


def test_the_message_column_wraps_instead_of_being_cut(backend, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    finding = {
        "check": "lookalike_class",
        "severity": "fail",
        "classes": ["orchids", "tulips"],
        "files": ["/orchids/1.jpg"],
        "message": MESSAGE,
        "introduced_by": [],
    }
    with mock.patch("auditor.audit_commit", autospec=True, return_value=result("fail", [finding])):
        assert run("audit", "flower_photos@master") == 3
    lines = capsys.readouterr().out.splitlines()
    assert len(MESSAGE) > 120 and all(len(line) <= 120 for line in lines)
    header = lines[1]
    start, end = header.index("MESSAGE"), header.index("INTRODUCED BY")
    column = " ".join(line[start:end].strip() for line in lines[2:])
    assert " ".join(column.split()) == " ".join(MESSAGE.split())  # all of it, in order


# -- tulip lineage and blame ------------------------------------------------------------------


def test_lineage_calls_lineage_around(backend, capsys):
    import networkx as nx

    from auditor.lineage.queries import LineageView

    view = LineageView(nx.MultiDiGraph(), None, nx.MultiDiGraph())
    with mock.patch("auditor.lineage_around", autospec=True, return_value=view) as api:
        assert run("lineage", "Convert@master", "--upstream", "--no-files", "-o", "json") == 0
    api.assert_called_once_with(backend, "Convert@master", direction="upstream", files=False)


def test_lineage_diff_calls_lineage_diff(backend):
    from auditor.lineage.diff import TrainingDataDiff

    diff = TrainingDataDiff("a", "b", [], [], [], [], [], [], [], {}, {}, [])
    with mock.patch("auditor.lineage_diff", autospec=True, return_value=diff) as api:
        assert run("lineage", "Train@master^", "--diff", "Train@master") == 0
    api.assert_called_once_with(backend, "Train@master^", "Train@master")


def test_blame_calls_blame(backend):
    report = mock.Mock(render=mock.Mock(return_value="nothing to blame\n"))
    with mock.patch("auditor.blame.blame", autospec=True, return_value=report) as api:
        assert run("blame", "Convert@master") == 0
    api.assert_called_once_with(backend, "Convert@master")


# -- tulip export mobile ------------------------------------------------------------------------


def test_export_mobile_calls_export_release_and_a_gate_refusal_exits_3(backend, tmp_path, capsys):
    refusal = GateBlocked("the gate blocks Convert@abc on Audit@abc: audit abc failed")
    with mock.patch("mobile.release.export_release", autospec=True, side_effect=refusal) as api:
        assert run("export", "mobile", "Convert@master", "--android", str(tmp_path)) == 3
    api.assert_called_once_with(
        backend,
        "Convert@master",
        android=tmp_path,
        ios=None,
        force=False,
        reason=None,
        device_check=False,
        ios_runtime=None,
        android_runtime=None,
    )
    assert capsys.readouterr().err == f"tulip: error: {refusal}\n"


def test_export_mobile_passes_the_app_runtimes(backend, tmp_path):
    from mobile.errors import RuntimeTooOld

    refusal = RuntimeTooOld("Convert@abc:/optimized_graph.lite needs TensorFlow Lite 1.15.0")
    with mock.patch("mobile.release.export_release", autospec=True, side_effect=refusal) as api:
        args = ["export", "mobile", "Convert@master", "--ios", str(tmp_path)]
        assert run(*args, "--ios-runtime", "1.13.1", "--android-runtime", "2.16") == 2
    assert api.call_args.kwargs["ios_runtime"] == "1.13.1"
    assert api.call_args.kwargs["android_runtime"] == "2.16"


def test_export_mobile_force_needs_a_reason_before_any_call(tmp_path, capsys):
    with mock.patch("mobile.release.export_release", autospec=True) as api:
        assert run("export", "mobile", "Convert@master", "--ios", str(tmp_path), "--force") == 2
    api.assert_not_called()
    assert "--force needs --reason" in capsys.readouterr().err


def test_export_mobile_check_says_what_flagged_means(backend, tmp_path, capsys):
    release = mock.MagicMock()
    release.forced = False
    release.source.commit.repo, release.source.commit.id = "Convert", "c" * 32
    release.source.architecture = "mobilenet_0.25_224 int8"
    release.source.blocked = False
    release.manifest.labels = ("daisy", "tulips")
    release.manifest.audit = None
    release.manifest.data = ()
    release.result.asset_dirs = {}
    release.export_id = "e1"
    release.record = {
        "device_check": {
            "split": "test",
            "images": 40,
            "max_changed": 0.01,
            "flagged": ["ios"],
            "platforms": [
                {"platform": "android", "accuracy": 0.9, "agreement": 1.0, "flagged": False},
                {"platform": "ios", "accuracy": 0.7, "agreement": 0.8, "flagged": True},
            ],
        }
    }
    with mock.patch("mobile.release.export_release", autospec=True, return_value=release) as api:
        assert run("export", "mobile", "Convert@master", "--ios", str(tmp_path), "--check") == 0
    assert api.call_args.kwargs["device_check"] is True
    out = capsys.readouterr().out
    assert "ios 70.0% accurate, 80.0% agree FLAGGED" in out
    [meaning] = [line for line in out.splitlines() if line.startswith("FLAGGED: ios:")]
    assert "more than 1.0% of the predictions the pipeline makes with the same model" in meaning
    assert f"`tulip mobile check Convert@{'c' * 32}` lists the images" in meaning


# -- the one table ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (GateBlocked("gate blocked: audit x failed"), 3, "tulip: error: gate blocked"),
        (TulipError("no branch 'mastr' in flower_photos"), 2, "tulip: error: no branch"),
        (RuntimeError("boom"), 1, "tulip: unexpected error: RuntimeError: boom"),
        (KeyboardInterrupt(), 130, "tulip: interrupted"),
    ],
)
def test_errors_become_exit_codes_in_one_place(backend, capsys, error, code, said):
    with mock.patch("auditor.blame.blame", autospec=True, side_effect=error):
        assert run("blame", "Convert@master") == code
    assert capsys.readouterr().err.startswith(said)


def test_the_table_puts_subclasses_before_their_bases():
    kinds = [kind for kind, _ in EXIT_CODES]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(kind, earlier) for earlier in kinds[:i]), kind
    assert exit_code(GateBlocked("x")) == 3 and exit_code(TulipError("x")) == 2


def test_the_main_docstring_states_the_codes_of_the_table():
    import tulip.cli.main as m

    for _kind, code in EXIT_CODES:
        assert f"\n{code} " in m.__doc__ or f"\n{code}  " in m.__doc__, code


def test_cli_modules_never_exit_by_themselves():
    root = Path(__file__).resolve().parents[2] / "tulip" / "cli"
    offenders = [
        p.name
        for p in root.glob("*.py")
        if p.name not in ("main.py", "reference.py")
        and any(word in p.read_text() for word in ("ctx.exit(", "sys.exit(", "SystemExit"))
    ]
    assert offenders == []
