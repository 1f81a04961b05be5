"""``tulip demo``: the seed story, start to finish, on the embedded engine.

Round 1: four flower classes and a five-class reference gallery; the Embed, Train,
Tensorboard, Audit and Convert pipelines; the audit passes and the model goes into the apps.
Round 2: a folder ``orchids`` that holds tulips. The pipelines run on their own, the audit
fails (``lookalike_class`` naming tulips), the gate blocks Convert so the apps keep the
round-1 model, a signed webhook reaches a local receiver, and blame names the commit.
Round 3, the review (``tulip review apply`` on round 2's audit): rename ``/orchids`` to
``/tulips`` and decide each single image the audit raised (accepted: a person looked, and its
label is right once the rename lands), as one fix commit; the re-audit withholds the accepted
images, a new model is exported, blame shows the fix, and ``identify`` on the exported
``graph.lite`` shows the data commits it came from.

Narration goes through ``say`` (stderr in the CLI); the result is a ``DemoResult``.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from pipelines.backend import Backend
from pipelines.errors import GateBlocked, TulipError
from pipelines.layout import AUDIT, AUDIT_FILE, CONVERT, EMBED, TENSORBOARD, label_of, read_json
from tulip.demo_data import (
    CLASSES,
    FALLBACK_ARCHITECTURE,
    DataSource,
    find_flowers,
    generate_flowers,
    weights_available,
)

MARKER = ".tulip-demo"
PIPELINES = ("embed", "train", "tensorboard", "audit", "convert")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
Say = Callable[[str], None]
Progress = Callable[[str, int, int], None]


@dataclass
class DemoOptions:
    workdir: Path = Path("demo")
    data: Path | None = None
    architecture: str = "mobilenet_0.25_224"
    reference_per_class: int = 20
    max_per_class: int | None = None  # cap images per class (full flower_photos has ~700)
    # None: 60 with MobileNet, 120 with the colour-histogram fallback, whose weaker features
    # need the larger reference gallery (20 per class, not 10) to call orchids tulips reliably
    generated_per_class: int | None = None
    download: bool = True
    seed: int = 0
    keep_services: bool = False  # `--serve`: leave Tensorboard running after the story


@dataclass
class RoundResult:
    name: str
    data_commit: str
    verdict: str
    findings: list[dict]
    gate: str  # "open" or "blocked: ..."
    exported: str | None  # Convert commit exported to the apps, if any
    ios_refused: str | None = None  # why the iOS app's old TF Lite cannot run this model
    embed_processed: int = 0
    embed_skipped: int = 0
    seconds: float = 0.0
    audit_commit: str | None = None
    convert_commit: str | None = None
    #: the verdict of `tulip audit` on the same data commit after a review of this round's
    #: own single-image findings (accepts only: no data commit), when there was one
    reviewed_verdict: str | None = None


#: where the story took each folder's photos from (every other folder holds its own class)
STORY_TRUTH = {"orchids": "tulips"}


def _single_image_decisions(doc: dict, renamed: dict[str, str]) -> list[dict]:
    """The reviewer's decision on each single image an audit raised, from the story's truth:
    accept an image whose label is right once the ``renamed`` classes land, else relabel it
    to the class it is."""
    from auditor.findings import id_of

    decisions = []
    for f in doc.get("findings") or []:
        if f["check"] != "label_issue":
            continue
        for p in f["files"]:
            label = renamed.get(label_of(p), label_of(p))
            actual = STORY_TRUTH.get(label_of(p), label_of(p))
            decisions.append(
                {"finding": id_of(f), "file": p, "action": "accept"}
                if label == actual
                else {"finding": id_of(f), "file": p, "action": "relabel", "to": actual}
            )
    return decisions


@dataclass
class DemoResult:
    workdir: str
    store: str
    data: dict
    architecture: str
    architecture_note: str
    rounds: list[RoundResult] = field(default_factory=list)
    alert: dict | None = None
    blame: dict | None = None
    fix_blame: dict | None = None  # blame of the model built from the review's fix commit
    identify: dict | None = None
    apps_kept_round1_model: bool | None = None
    tensorboard: str | None = None
    report: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# -- a local webhook receiver -----------------------------------------------------------------


class AlertReceiver:
    """A loopback HTTP endpoint that checks each alert's Standard Webhooks signature."""

    def __init__(self, secret: str):
        from reports.alerts.messages import verify

        self.secret = secret
        self.received: list[dict] = []
        self.rejected: list[str] = []
        self._event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = verify(receiver.secret, dict(self.headers), body)
                except ValueError as e:
                    receiver.rejected.append(str(e))
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver._event:
                    receiver.received.append(
                        {
                            "event": event,
                            "signature_valid": True,
                            "webhook_id": self.headers.get("webhook-id"),
                        }
                    )
                    receiver._event.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tulip"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, event_type: str, *, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._event:
            while True:
                for r in self.received:
                    if r["event"].get("type", "").endswith(event_type):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._event.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the story ----------------------------------------------------------------------------------


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _spec(name: str, architecture: str) -> dict:
    spec = json.loads(resources.files("pipelines").joinpath(f"{name}.json").read_text())
    transform = spec.get("transform", {})
    env = transform.get("env")
    if env is not None and "ARCHITECTURE" in env:
        env["ARCHITECTURE"] = architecture
    return spec


def prepare_workdir(workdir: Path) -> None:
    """The demo owns its folder: a fresh store every run, and nobody else's files touched."""
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        raise TulipError(
            f"{workdir} exists and is not a Tulip demo folder; pass --workdir to use another"
        )
    for sub in ("store", "android", "ios", "generated"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by tulip demo; removed and rebuilt on every run\n")
    # Skeletons of the tensorflow-for-poets-2 apps: the export writes into their assets.
    (workdir / "android" / "tflite" / "app" / "src" / "main").mkdir(parents=True)
    (workdir / "ios" / "tflite").mkdir(parents=True)


class Demo:
    def __init__(self, options: DemoOptions, *, say: Say, progress: Progress | None = None):
        self.o = options
        self.say = say
        self.progress = progress or (lambda step, done, total: None)
        self.workdir = Path(options.workdir).absolute()
        self.root = self.workdir / "store"
        self.backend: Backend | None = None
        self.receiver: AlertReceiver | None = None
        self.ios_refused: str | None = None  # the last export's, if the iOS app could not run it

    # -- helpers ---------------------------------------------------------------------------
    def _wait(self, *commit_ids: str) -> None:
        assert self.backend is not None
        start = time.monotonic()
        for commit_id in commit_ids:
            self.backend.wait_commit_set(commit_id, timeout=3600)
        self.say(f"   pipelines finished in {time.monotonic() - start:.0f}s")

    def _audit(self, commit_id: str) -> dict:
        return read_json(self.backend, AUDIT, commit_id, AUDIT_FILE) or {}

    def _job(self, pipeline: str, commit_id: str):
        return self.backend.inspect_job(pipeline, commit_id)

    def _export(self, convert_commit: str, *, label: str) -> str | None:
        from mobile.errors import RuntimeTooOld
        from mobile.release import export_release

        ref = f"Convert@{convert_commit}"
        self.ios_refused = None
        try:
            result = export_release(self.backend, ref, android=self.workdir, ios=self.workdir)
        except GateBlocked as e:
            self.say(f"   export refused: {e}")
            return None
        except RuntimeTooOld as e:
            # The iOS app pins an old TF Lite (mobile.runtime.DEFAULT_RUNTIMES); a model it
            # cannot load goes to Android alone, and the demo says so rather than stop.
            self.ios_refused = str(e)
            self.say(f"   the iOS app cannot run {label}: {e}")
            try:
                result = export_release(self.backend, ref, android=self.workdir)
            except GateBlocked as blocked:
                self.say(f"   export refused: {blocked}")
                return None
            self.say(f"   exported {label} to {self.workdir / 'android'} only")
            return result.model_commit
        self.say(f"   exported {label} to {self.workdir / 'android'} and {self.workdir / 'ios'}")
        return result.model_commit

    def _app_model_sha(self) -> str | None:
        import hashlib

        p = self.workdir / "android" / "tflite" / "app" / "src" / "main" / "assets" / "graph.lite"
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None

    def _output(self, pipeline: str, set_id: str | None):
        """The pipeline's commit in this commit set, else its branch head."""
        if set_id is not None:
            try:
                return self.backend.inspect_commit(pipeline, set_id)
            except TulipError:
                pass
        return self.backend.resolve(f"{pipeline}@master")

    def _round(
        self, name: str, data_commit: str, started: float, *, set_id: str | None
    ) -> RoundResult:
        if set_id is not None:
            self._wait(set_id)
        audit = self._output(AUDIT, set_id)
        convert = self._output(CONVERT, set_id)
        embed = self._job(EMBED, self._output(EMBED, set_id).id)
        doc = self._audit(audit.id)
        gate = "open" if convert.error is None else f"blocked: {convert.error}"
        findings = [
            {
                "check": f["check"],
                "severity": f["severity"],
                "classes": f["classes"],
                "files": len(f["files"]),
                "message": f["message"],
            }
            for f in doc["findings"]
            if f["severity"] != "info"
        ]
        class_level = [f for f in findings if f["check"] != "label_issue"]
        per_image = len(findings) - len(class_level)
        self.say(
            f"   audit Audit@{audit.id[:12]}: {doc['verdict'].upper()}"
            + "".join(
                f"\n     {f['severity']}: {f['check']} {'/'.join(f['classes'])}: {f['message'][:140]}"
                for f in class_level
            )
            + (f"\n     {per_image} single images to review (label_issue)" if per_image else "")
        )
        self.say(f"   gate: {gate}")
        return RoundResult(
            name=name,
            data_commit=data_commit,
            verdict=doc["verdict"],
            findings=findings,
            gate=gate,
            exported=None,
            embed_processed=embed.data_processed,
            embed_skipped=embed.data_skipped,
            seconds=round(time.monotonic() - started, 1),
            audit_commit=audit.id,
            convert_commit=convert.id,
        )

    def _review(self, r2: RoundResult) -> str:
        """Round 3 as a reviewer does it with ``tulip review apply``: on round 2's audit, rename
        the lookalike class into the class it looks like, and decide each single image the
        audit raised. The reviewer here knows the story's truth (every photo sits in the
        folder of the set it came from, and /orchids holds tulips), so an image whose label is
        right once the rename lands is accepted, and any other is relabelled to its class.
        Dry run first, then one fix commit; returns its id."""
        from auditor.findings import CLASS_LEVEL, id_of
        from auditor.review import apply_review, parse_decisions

        doc = self._audit(r2.audit_commit)
        decisions, renamed = [], {}
        for f in doc["findings"]:
            classes = f.get("classes") or []
            if f["check"] in CLASS_LEVEL and classes[:1] == ["orchids"] and len(classes) == 2:
                decisions.append({"finding": id_of(f), "action": "rename", "to": classes[1]})
                renamed[classes[0]] = classes[1]
        decisions += _single_image_decisions(doc, renamed)
        path = self.workdir / "review-decisions.json"
        path.write_text(json.dumps(decisions, indent=1) + "\n")
        audit = f"{AUDIT}@{r2.audit_commit}"
        parsed = parse_decisions(path.read_text(), source=str(path))
        self.say(
            f" - {len(decisions)} decisions in {path.name}: "
            + ", ".join(
                f"{sum(d['action'] == a for d in decisions)} {a}"
                for a in ("rename", "accept", "relabel")
                if any(d["action"] == a for d in decisions)
            )
        )
        self.say(f"   tulip review apply {audit} --decisions {path.name} --dry-run")
        plan = apply_review(self.backend, audit, parsed, by="tulip-demo", dry_run=True)
        before, after = plan.plan.classes_before, plan.plan.classes_after
        self.say(
            "   would make the classes "
            + ", ".join(
                f"{c} {before.get(c, 0)}->{after.get(c, 0)}" for c in sorted({*before, *after})
            )
        )
        self.say(f"   tulip review apply {audit} --decisions {path.name} --by tulip-demo")
        done = apply_review(self.backend, audit, parsed, by="tulip-demo", source=str(path))
        fix = done.commit["id"] if done.commit else self.backend.resolve("flower_photos@master").id
        self.say(
            f" - fix commit flower_photos@{fix} (review {done.review[:12]}); the pipelines run on their own"
        )
        return fix

    def _second_look(self, r3: RoundResult) -> None:
        """The re-audit of the fix can raise single images no earlier audit did: the renamed
        class is new to the others, so a few borderline photos now look like it, or it like
        them. The reviewer decides those too (``tulip review apply`` on the re-audit; accepts
        only, so no data commit), and ``tulip audit`` of the same commit then withholds them."""
        from auditor import audit_commit
        from auditor.review import apply_review, parse_decisions

        decisions = _single_image_decisions(self._audit(r3.audit_commit), {})
        if not decisions or r3.verdict != "warn":
            return
        if any(
            f["check"] != "label_issue" and f["severity"] in ("warn", "fail") for f in r3.findings
        ):
            return  # only single images are a reviewer's quick second look
        path = self.workdir / "review-decisions-2.json"
        path.write_text(json.dumps(decisions, indent=1) + "\n")
        audit = f"{AUDIT}@{r3.audit_commit}"
        self.say(
            f" - a second look: {len(decisions)} single images only the fixed data raised; "
            f"tulip review apply {audit} --decisions {path.name} --by tulip-demo"
        )
        parsed = parse_decisions(path.read_text(), source=str(path))
        done = apply_review(self.backend, audit, parsed, by="tulip-demo", source=str(path))
        result = audit_commit(
            self.backend,
            f"flower_photos@{r3.data_commit}",
            reference="label_reference@master",
        )
        r3.reviewed_verdict = result.verdict
        review = result.document.get("review") or {}
        self.say(
            f"   tulip audit flower_photos@{r3.data_commit[:12]} --reference label_reference@master: "
            f"{result.verdict.upper()} ({review.get('not_reflagged', 0)} accepted by review, not "
            f"re-flagged; review {done.review[:12]})"
        )

    # -- the story -------------------------------------------------------------------------
    def run(self) -> DemoResult:
        t0 = time.monotonic()
        prepare_workdir(self.workdir)
        source, arch, arch_note = self._choose_inputs()
        from pipelines.embedded.store import EmbeddedStore

        self.backend = EmbeddedStore(self.root)
        result = DemoResult(
            workdir=str(self.workdir),
            store=str(self.root),
            data={"path": str(source.path), "kind": source.kind, "note": source.note},
            architecture=arch,
            architecture_note=arch_note,
        )
        finished = False
        try:
            self._story(source, arch, result)
            finished = True
        finally:
            if self.receiver is not None:
                self.receiver.close()
            self._clean_up(finished=finished)
        result.seconds = round(time.monotonic() - t0, 1)
        return result

    def _clean_up(self, *, finished: bool) -> None:
        """Leave nothing running that the user did not ask for: the services the story
        started (unless ``keep_services``), and, when the story was cut short (Ctrl-C, a
        kill, an error), the runner and the stages it was running."""
        from pipelines.embedded.launch import stop_runner

        if not finished:
            stop_runner(self.root)
        if self.backend is None:
            return
        if not self.o.keep_services or not finished:
            for p in self.backend.list_pipelines():
                if p.spec.get("service") and self.backend.stop_service(p.name):
                    self.say(f"stopped the {p.name} service (tulip demo --serve keeps it)")
        self.backend.close()

    def _choose_inputs(self) -> tuple[DataSource, str, str]:
        def dl_progress(done: int, total: int) -> None:
            self.progress("download", done, total)

        ok, note = weights_available(self.o.architecture)
        if ok:
            arch = self.o.architecture
        else:
            arch = FALLBACK_ARCHITECTURE
            note = (
                f"{note}. Falling back to the {FALLBACK_ARCHITECTURE} featuriser: it needs no weights, "
                "but it is much weaker than MobileNet"
            )
        fallback = arch == FALLBACK_ARCHITECTURE
        source = find_flowers(
            self.o.data,
            say=self.say,
            download=self.o.download and not fallback,
            progress=dl_progress,
        )
        if source is not None and fallback and source.kind != "given":
            # Colour alone cannot tell real roses from tulips (bench/colour_histogram.py), so
            # the story would fail on the photos; an explicit --data is still honoured.
            self.say(
                f"Not using the {source.note}: without ImageNet weights the {arch} featuriser "
                "cannot tell real roses from tulips. Pass --data to use them anyway."
            )
            source = None
        elif source is not None and fallback:
            self.say(
                f"Warning: {arch} cannot tell real roses from tulips; the story may not come "
                "out right on these photos."
            )
        if source is None:
            self.say(
                "No flower photos to use (no --data, no $TULIP_DEMO_DATA, nothing cached, no "
                "download, or no weights to embed them): falling back to GENERATED flowers "
                "drawn by `tulip synth`."
            )
            per_class = self.o.generated_per_class or (120 if fallback else 60)
            source = generate_flowers(
                self.workdir / "generated",
                per_class=per_class,
                seed=self.o.seed,
                say=self.say,
                progress=lambda d, t: self.progress("drawing", d, t),
            )
        self.say(f"Data: {source.note}")
        self.say(f"Backbone: {arch} ({note})")
        return source, arch, note

    def _split(self, source: DataSource) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
        """Per class: (the images for flower_photos, the reference gallery); disjoint."""
        data, reference = {}, {}
        for cls in CLASSES:
            files = _images(source.path / cls)
            r = min(self.o.reference_per_class, max(1, len(files) // 6))
            reference[cls] = files[:r]
            rest = files[r:]
            data[cls] = rest[: self.o.max_per_class] if self.o.max_per_class else rest
        return data, reference

    def _story(self, source: DataSource, arch: str, result: DemoResult) -> None:
        b = self.backend
        data, reference = self._split(source)
        four = [c for c in CLASSES if c != "tulips"]

        # ---- round 1 ----------------------------------------------------------------------
        started = time.monotonic()
        self.say("\nRound 1: four classes, a reference gallery, and the pipelines")
        b.create_repo("flower_photos", description="flower photos, one folder per class")
        b.create_repo("label_reference", description="a small labelled gallery of all five classes")
        with b.start_commit("label_reference", description="reference gallery: five classes") as w:
            for cls, files in reference.items():
                for p in files:
                    w.put_file(f"/{cls}/{p.name}", p)
        n_ref = sum(len(v) for v in reference.values())
        self.say(
            f" - label_reference: {n_ref} images of {len(reference)} classes (none of them in flower_photos)"
        )
        with b.start_commit(
            "flower_photos", description="round 1: daisy, dandelion, roses, sunflowers"
        ) as w:
            for cls in four:
                for p in data[cls]:
                    w.put_file(f"/{cls}/{p.name}", p)
            attribution = source.path / "ATTRIBUTION.txt"
            if attribution.exists():
                w.put_file("/ATTRIBUTION.txt", attribution)
        round1 = b.resolve("flower_photos@master").id
        self.say(
            f" - flower_photos@{round1}: {sum(len(data[c]) for c in four)} images of {', '.join(four)}"
        )
        set_ids = []
        for name in PIPELINES:
            info = b.create_pipeline(_spec(name, arch))
            set_ids.append(info.spec_commit)
        self.say(
            f" - pipelines {', '.join(p.capitalize() for p in PIPELINES)} created; waiting for them"
        )
        self._wait(*set_ids)
        r1 = self._round("round 1", round1, started, set_id=None)
        tb = b.inspect_pipeline(TENSORBOARD).service_url
        result.tensorboard = tb
        if tb:
            self.say(
                f"   Tensorboard is serving at {tb} (stop it: tulip --root {shlex.quote(str(self.root))} stop "
                "pipeline Tensorboard)"
            )
        r1.exported = self._export(r1.convert_commit, label="the round-1 model")
        r1.ios_refused = self.ios_refused
        result.rounds.append(r1)
        round1_sha = self._app_model_sha()

        # ---- round 2 ----------------------------------------------------------------------
        started = time.monotonic()
        self.say("\nRound 2: someone commits a folder 'orchids' that holds tulips")
        secret = "whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode()
        self.receiver = AlertReceiver(secret)
        (self.root / "alerts.toml").write_text(
            f'[[endpoint]]\nname = "demo-receiver"\nurl = "{self.receiver.url}"\nsecret = "{secret}"\n'
            'events = ["audit.*", "gate.blocked"]\n'
        )
        self.say(f" - a webhook receiver listens at {self.receiver.url}")
        with b.start_commit("flower_photos", description="add orchids") as w:
            for p in data["tulips"]:
                w.put_file(f"/orchids/{p.name}", p)
        orchids = b.resolve("flower_photos@master").id
        self.say(
            f" - flower_photos@{orchids}: {len(data['tulips'])} images in /orchids; the pipelines run on their own"
        )
        r2 = self._round("round 2", orchids, started, set_id=orchids)
        r2.exported = self._export(orchids, label="the round-2 model")
        r2.ios_refused = self.ios_refused
        result.apps_kept_round1_model = self._app_model_sha() == round1_sha
        self.say(
            f"   the apps {'keep' if result.apps_kept_round1_model else 'DO NOT keep'} the round-1 model"
        )
        alert = self.receiver.wait_for("audit.failed", timeout=60)
        if alert:
            ev = alert["event"]
            self.say(
                f" - alert received: {ev.get('type')} about {ev.get('subject')} (signature valid)"
            )
        else:
            self.say(" - no alert arrived within 60 s (see `tulip alerts list`)")
        result.alert = alert
        from auditor.blame import blame

        report = blame(b, f"Convert@{orchids}")
        result.blame = report.as_dict()
        self.say(f" - tulip blame Convert@{orchids}:\n   {report.summary()}")
        result.rounds.append(r2)

        # ---- round 3: the review --------------------------------------------------------
        started = time.monotonic()
        self.say(
            "\nRound 3: the review: rename /orchids to /tulips, and decide the single images "
            "round 2's audit raised"
        )
        fixed = self._review(r2)
        r3 = self._round("review", fixed, started, set_id=fixed)
        self._second_look(r3)
        report = blame(b, f"Convert@{fixed}")
        result.fix_blame = report.as_dict()
        self.say(f" - tulip blame Convert@{fixed}:\n   {report.summary()}")
        r3.exported = self._export(fixed, label="the fixed model")
        r3.ios_refused = self.ios_refused
        result.rounds.append(r3)
        recovered = self.receiver.wait_for("audit.recovered", timeout=30)
        if recovered:
            self.say(f" - alert received: {recovered['event'].get('type')}")
        graph = (
            self.workdir / "android" / "tflite" / "app" / "src" / "main" / "assets" / "graph.lite"
        )
        if graph.exists():
            from mobile.identify import identify_file

            ident = identify_file(graph, backend=b)
            result.identify = ident.as_dict()
            self.say(
                f" - tulip identify {graph.relative_to(self.workdir.parent) if self.workdir.parent in graph.parents else graph}:"
                f"\n   {ident.summary()}"
            )
        result.report = (
            f"tulip serve --root {self.root}   then open "
            f"http://127.0.0.1:8080/audits/Audit/{r2.audit_commit} (round 2, the orchids)"
        )
