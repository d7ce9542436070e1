"""``export`` and ``check``: the Python API behind ``st-export``."""
from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import kinds
from .errors import InvalidOptionError, ModelNotFoundError, ParityError, UnsupportedModelError
from .manifest import file_rows, new_manifest, write_manifest
from .runtime.manifest import read_manifest
from .model import read_model
from .output import (PID_FILE, export_to_add_to, kept_targets, missing_ancestors, out_of_space_error, output_path,
                     prepare_output, publish, remove_own_partials)
from .progress import Progress, reporting
from .verify.promises import files_report, settings_report, target_files


@dataclass
class TargetRow:
    """One line of the summary table."""

    target: str
    files: list[str]
    bytes: int
    seconds: float
    parity: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        variants = self.parity.get("variants", {}).values()
        prompts = self.parity.get("prompts", {}).values()  # one row per prompt graph (exporter/kinds/embedding.py)
        return all(p.get("passed", True) for key, p in self.parity.items() if key not in ("variants", "prompts")) \
            and all(v["passed"] for v in variants) and all(p["passed"] for p in prompts)

    def prompt_rows(self) -> list["TargetRow"]:
        """Return one row per prompt graph besides the default one (``<target> prompt=<name>``) for the summary table."""
        return [TargetRow(f"{self.target} prompt={name}", [p["graph"]], p.get("bytes", 0), 0.0,
                          {"embeddings": {k: v for k, v in p.items() if k != "tokens"},
                           **({"tokens": p["tokens"]} if "tokens" in p else {})})
                for name, p in self.parity.get("prompts", {}).items()]

    def variant_rows(self) -> list["TargetRow"]:
        """Return one row per variant (``<target>:<name>``) for the summary table."""
        return [TargetRow(f"{self.target}:{name}", [v.get("shows") or v["file"]], v.get("bytes", 0), 0.0,
                          {"embeddings": v})
                for name, v in self.parity.get("variants", {}).items()]


@dataclass
class ExportResult:
    out: Path
    manifest: dict[str, Any]
    rows: list[TargetRow]

    @property
    def skipped(self) -> dict[str, list[str]]:
        """Return {target: why} of the targets a default export left out (this model cannot run there)."""
        return self.manifest.get("skipped_targets", {})

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)


@contextlib.contextmanager
def _step(progress: Progress | None, label: str) -> Iterator[None]:
    """Report ``label``; inside the step, :func:`exporter.progress.note` reports its parts to the same callback."""
    if progress:
        progress(label)
    with reporting(progress):
        yield


def export(model_dir: str | Path | None = None, out: str | Path = "export", *,
           targets: Sequence[str] | str | None = None, force: bool = False, add: bool = False,
           check: bool = True,
           opset: int | None = None, variants: bool = True, options: dict[str, Any] | None = None,
           texts: str | Path | Sequence[str] | None = None, progress: Progress | None = None,
           truncate_dim: int | None = None, trust_remote_code: bool = False) -> ExportResult:
    """Export a sentence-transformers model to string-in artifacts and prove them.

    Args:
        model_dir: the model directory; None for the bundled all-MiniLM-L6-v2.
        out: output directory; written atomically (temp dir, then rename). A symlink stays: the export is
            written where it points.
        targets: target names (list or comma-separated); None for every implemented target.
        force: replace everything in a non-empty ``out`` (its other targets included).
        add: build ``targets`` into an existing export of the same model in ``out`` and keep its other
            targets' files and manifest entries as they are (the named targets and what they need are
            rebuilt); ``out`` is replaced atomically once they pass.
        check: compare every artifact to SentenceTransformer on the parity corpus; a miss
            raises ParityError and nothing is written.
        opset: ONNX opset of the exported graphs (default and lowest: 20).
        variants: also write each target's variants (quantized / optimized files); False writes
            only the main artifact of each target (faster, for tests and quick iterations).
        options: further target settings, passed to every target's ``build`` (each target
            documents the keys it reads).
        texts: your own texts for the parity run, beside the corpora: a file (one JSON string per line, or
            plain lines in a ``.txt``) or a list of str; for a CrossEncoder, (query, document) pairs: a file of one
            JSON ``[query, document]`` per line or a list of pairs. The manifest records their count and sha256.
        progress: called with a short label before each step.
        truncate_dim: export the first N dimensions of the embedding (Matryoshka), what
            ``SentenceTransformer(model_dir, truncate_dim=N).encode`` returns: 1 to the model's dimension; None: the
            model's own (its config_sentence_transformers.json's truncate_dim when it holds one).
        trust_remote_code: let the model's own modeling code in ``model_dir`` (config.json ``auto_map`` to .py files
            there) run, for the export and for the reference; off: a model that needs it is refused. The manifest
            records the files that ran (``source.remote_code``).

    Returns:
        ExportResult with the manifest and one summary row per target.

    Raises:
        ExporterError subclasses: bad model, bad output directory, unknown target, parity miss.
    """
    chosen = _ordered_targets(targets, progress)
    out = output_path(out)
    # a bad file fails before anything is read or built: texts for an embedding, [query, document] pairs for a reranker
    corpus, corpus_record = kinds.of_folder(model_dir).corpus(texts)
    if add and force:
        raise InvalidOptionError("--add (add=True) keeps OUT's other targets and --force (force=True) replaces "
                                 "everything in OUT: pass one of them")
    with _step(progress, "reading the model"):
        spec = read_model(model_dir, trust_remote_code=trust_remote_code)
        if truncate_dim is not None:
            spec = spec.truncated(truncate_dim)
        spec = kinds.get(spec.kind).configured(spec, options or {})  # the kind's settings (--sparse-top-k)
        chosen, skipped = _runnable(chosen, spec, every=targets is None and not add)
        previous = export_to_add_to(out, spec) if add else None
    created = missing_ancestors(out.parent)  # removed again if the export fails
    published = False
    temp = None
    try:
        temp = prepare_output(out, force or add)
        manifest = new_manifest(spec)
        if skipped:
            manifest["skipped_targets"] = skipped
        if previous is not None:
            manifest["targets"] = kept_targets(out, temp, previous, rebuilt={target.name for target in chosen})
        options = {**(options or {}), "variants": variants, **({"opset": opset} if opset else {})}
        for target in chosen:  # a bad setting fails before minutes of building, not after
            target.check_options(spec, options)
        rows = _built_rows(chosen, spec, temp, manifest=manifest, options=options, progress=progress)
        if check:
            manifest["parity_texts"] = corpus_record
            _check_parity(chosen, rows, spec, temp, manifest=manifest, texts=corpus, progress=progress)
        else:
            for target in chosen:
                manifest["targets"][target.name]["parity"] = "not checked (--no-check)"
        (temp / PID_FILE).unlink()
        write_manifest(temp, manifest)
        result = ExportResult(out=out, manifest=manifest, rows=rows)
        if not result.passed:
            raise ParityError(_parity_message(rows))
        publish(temp, out)
        published = True
        return result
    except Exception as exc:  # any target's writer: Python's OSError, TensorFlow's own errors
        failure = out_of_space_error(exc, out)
        if failure is None:
            raise
        raise failure from None
    finally:
        if temp is not None and temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
        if not published:
            remove_own_partials(out)  # an interrupt that landed before ``temp`` was bound
            for folder in created:  # deepest first; only what this export created and left empty
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _ordered_targets(targets: Sequence[str] | str | None, progress: Progress | None) -> list:
    """Return the named targets and those they are built from, in build order (saying why each extra one is built).

    Build in each target's ``order`` whatever order they were named in: a target may use what a lower-ordered one
    wrote (triton reuses savedmodel/); requirements always have a lower order.
    """
    from targets import resolve

    chosen = resolve(list(targets) if isinstance(targets, (list, tuple)) else targets)
    chosen.sort(key=lambda target: target.order)
    if progress and targets is not None:
        named = {target.name for target in resolve(targets, with_requirements=False)}
        for target in chosen:
            if target.name not in named:
                progress(f"also building {target.name}: "
                         f"{', '.join(t.name for t in chosen if target.name in t.requires)} is built from it")
    return chosen


def _built_rows(chosen: list, spec: Any, temp: Path, *, manifest: dict[str, Any], options: dict[str, Any],
                progress: Progress | None) -> list[TargetRow]:
    """Return a summary row per target after building each into ``temp`` and recording it in ``manifest``."""
    rows = []
    for target in chosen:
        with _step(progress, f"building {target.name}"):
            start = time.perf_counter()
            built = target.build(spec, temp, options=options)
            rows.append(TargetRow(target.name, [str(f.relative_to(temp)) for f in built.files],
                                  sum(f.stat().st_size for f in built.files), time.perf_counter() - start))
            manifest["targets"][target.name] = {**built.details, "files": file_rows(built.files, temp)}
    return rows


def _check_parity(chosen: list, rows: list[TargetRow], spec: Any, temp: Path, *, manifest: dict[str, Any],
                  texts: list[Any], progress: Progress | None) -> None:
    """Compare every built target with the reference on ``texts`` (pairs for a reranker); the figures go to its row
    and the manifest."""
    kind = kinds.get(spec.kind)
    with _step(progress, "running the reference model"):
        reference = kind.reference(spec)
        expected = kind.expected(reference, texts)
        known = spec.tokenizer.kernel_decided()  # once: its sweeps are built from Unicode data
    for target, row in zip(chosen, rows, strict=True):
        with _step(progress, f"checking {target.name} parity"):
            row.parity = kind.parity(target, temp, reference, texts, expected, known)
        manifest["targets"][target.name]["parity"] = row.parity


def _runnable(chosen: list, spec: Any, *, every: bool) -> tuple[list, dict[str, list[str]]]:
    """Return (the targets to build, {target: why} of those left out).

    Targets named by the user must all work: any problem raises. The default (every target) leaves
    out the ones this model cannot run on (TFLite for a tokenizer without a TFLite kernel) and the
    ones that need them, and says why; it raises only when nothing is left.

    Raises:
        UnsupportedModelError: a named target cannot convert the model, or no target can.
    """
    problems = {target.name: target.problems(spec) for target in chosen}
    if not every or all(problems.values()):
        found = [f"{name}: {problem}" for name, found in problems.items() for problem in found]
        if found:
            raise UnsupportedModelError(found)
        return chosen, {}
    skipped = {name: found for name, found in problems.items() if found}
    for target in chosen:  # in build order: requirements first
        missing = [needed for needed in target.requires if needed in skipped]
        if missing and target.name not in skipped:
            skipped[target.name] = [f"needs {', '.join(missing)}"]
    return [target for target in chosen if target.name not in skipped], skipped


def _parity_message(rows: list[TargetRow]) -> str:
    lines = ["an artifact does not match the reference; nothing was written:"]
    for row in rows:
        tokens = row.parity.get("tokens", {})
        if tokens and not tokens["passed"]:
            lines.append(f"  - {row.target}: {tokens['mismatches']} token mismatch(es), e.g. "
                         f"{tokens['first_mismatches'][0].get('text')!r}")
        for sub in (row, *row.variant_rows(), *row.prompt_rows()):
            tokens = sub.parity.get("tokens", {})
            if sub is not row and tokens and not tokens["passed"]:
                lines.append(f"  - {sub.target}: {tokens['mismatches']} token mismatch(es) of prompt + text")
            for failure in sub.parity.get("embeddings", sub.parity.get("scores", {})).get("failures", []):
                lines.append(f"  - {sub.target}: {failure}")
    return "\n".join(lines)


def check(out: str | Path, *, model_dir: str | Path | None = None,
          texts: str | Path | Sequence[str] | None = None, progress: Progress | None = None,
          trust_remote_code: bool = False) -> ExportResult:
    """Re-run parity on an existing export (the CLI's ``st-export check OUT``).

    Args:
        out: a directory written by :func:`export`.
        model_dir: the source model; default: the path recorded in the manifest.
        texts: your own texts, beside the corpora (as for :func:`export`); the result's manifest records
            them under ``checked_texts``.
        progress: called with a short label before each step.
        trust_remote_code: let the model's own modeling code run, as for :func:`export` (asked again: the
            manifest's record of it gives no consent).

    Returns:
        ExportResult whose rows carry fresh parity figures (``passed`` says if all hold).

    Raises:
        ArtifactNotFoundError: ``out`` has no manifest.json (as :func:`exporter.load` says for the same folder).
        InvalidManifestError: ``out``'s manifest.json is not one st-export writes (each bad field named).
        ModelNotFoundError: the source model is not where the manifest (or ``model_dir``) says.
        InvalidModelError, UnsupportedModelError: the source model is refused as :func:`export` refuses it.
    """
    from targets import resolve

    out = Path(out)
    manifest = read_manifest(out)
    source = Path(model_dir) if model_dir else Path(manifest["source"]["path"])
    if not source.is_dir():
        raise ModelNotFoundError(f"source model {source} not found; pass it with --model (model_dir=)")
    kind = kinds.get(manifest.get("kind", "embedding"))
    texts, record = kind.corpus(texts)
    manifest["checked_texts"] = record
    with _step(progress, "reading the model"):
        spec = read_model(source, trust_remote_code=trust_remote_code)  # export's checks, before SentenceTransformer loads (and unpickles) anything
        if manifest.get("truncate_dim") is not None:
            spec = spec.truncated(manifest["truncate_dim"])
        spec = kind.configured(spec, kind.recorded_options(manifest))  # as exported (a sparse model's top-K)
    with _step(progress, "running the reference model"):
        reference = kind.reference(spec)
        expected = kind.expected(reference, texts)
        known = spec.tokenizer.kernel_decided()
        settings = settings_report(out, manifest, spec)
    rows = []
    for target in resolve(list(manifest["targets"]), with_requirements=False):  # what the manifest lists, only
        with _step(progress, f"checking {target.name} parity"):
            recorded = manifest["targets"][target.name]
            files = list(recorded["files"])
            start = time.perf_counter()
            row = TargetRow(target.name, files, sum((out / f).stat().st_size for f in files if (out / f).exists()),
                            0.0)
            row.parity = {"files": files_report(out, target_files(recorded)), "settings": settings}
            if row.parity["files"]["passed"]:  # a changed file may not even load: it is named, not run
                try:
                    problems = target.server_problems(out)  # ops the stock server does not link or load
                    row.parity["servers"] = {"failures": problems, "passed": not problems}
                    row.parity.update(kind.parity(target, out, reference, texts, expected, known))
                except Exception as exc:  # whatever a runtime raises for a file it cannot load or run
                    row.parity["runs"] = {"passed": False, "failures": [_run_failure(target.name, out, exc, kind)]}
            row.seconds = time.perf_counter() - start  # the check's time (an export's rows show the build's)
            rows.append(row)
    return ExportResult(out=out, manifest=manifest, rows=rows)


def _opened_and_run(target: str, out: Path, kind: kinds.Kind) -> Iterator[tuple[Path, Any]]:
    """Yield (path, a call that opens it and runs it on one input of ``kind``) for each of ``target``'s files in
    ``out``, in the artifact table's order, a tokenizer graph after its model."""
    from .runtime.artifacts import ARTIFACTS

    for row in ARTIFACTS:
        if row.base == target and row.path(out).exists():
            yield row.path(out), lambda row=row: kind.run_once(row.open(out))
            if row.tokenizer:
                yield out / row.tokenizer, lambda row=row: kind.tokenize_once(row.open_tokenizer(out))


def _run_failure(target: str, out: Path, exc: Exception, kind: kinds.Kind) -> str:
    """Return the check's failure for a target whose files match the manifest but do not load or run, naming the
    first of its files that does not open or run on its own (``exc``, what the parity run raised, otherwise)."""
    culprit, error = out / target, exc
    for path, attempt in _opened_and_run(target, out, kind):
        try:
            attempt()
        except Exception as found:  # as in check: whatever the runtime raises
            culprit, error = path, found
            break
    named = str(culprit.relative_to(out))
    if culprit.is_dir():  # a SavedModel, a served model's folder: the runtime does not say which of its files
        named += f"/ (one of {', '.join(sorted(str(f.relative_to(out)) for f in culprit.rglob('*') if f.is_file()))})"
    why = (str(error).strip().splitlines() or [""])[-1][:200]
    return (f"{named} does not load or run ({type(error).__name__}: {why}); its bytes are the ones the manifest "
            "records, so it was changed together with manifest.json: re-run st-export to write it again")
